"""The plain float64 references agree with the NumPy provider's forward and with torch's
on every sample case, return float64 whatever they are given, and keep a complex-step
perturbation; and every operator's cases include random values, large magnitudes and a
degenerate shape, with kinks and ties where the operator has them."""

import re

import numpy as np
import pytest

from harness import ops
from harness.core.mapping_cases import sample_cases
from harness.ops.catalog import NUMPY_OPERATORS, RECORDS
from harness.ops.references import REFERENCES

DEGENERATE = re.compile(r"single|width 1|batch 1|one channel|H = 1|a batch of 2")


def cases(name, dtype="float64"):
    record = RECORDS[name]
    for inputs, params, label in record.samples(np.random.default_rng(0), np.dtype(dtype)):
        yield inputs, {**record.params, **params}, label


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_a_reference_agrees_with_the_numpy_forward_and_keeps_complex_steps(name):
    for inputs, params, label in cases(name, "float32"):
        expected = NUMPY_OPERATORS[name]().forward(*(np.asarray(x, np.float64) if x.dtype.kind == "f" else x
                                                     for x in inputs), **params)
        got = REFERENCES[name](*inputs, **params)
        assert got.dtype == np.float64, label
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=label)
        stepped = tuple(x.astype(np.complex128) + 1e-20j if x.dtype.kind == "f" else x for x in inputs)
        assert np.iscomplexobj(REFERENCES[name](*stepped, **params)), label


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_a_reference_agrees_with_torch(name):
    torch = pytest.importorskip("torch")
    from harness.ops.torch_ops import torch_function

    for inputs, params, label in cases(name):
        expected = torch_function(name)(*(torch.from_numpy(x) for x in inputs), **params).numpy()
        np.testing.assert_allclose(REFERENCES[name](*inputs, **params), expected, rtol=1e-10, atol=1e-12, err_msg=label)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_operator_is_checked_on_random_large_and_degenerate_cases(name):
    labels = [case.label for case in sample_cases(ops.mapping(name), "float64")]
    assert "random" in labels
    assert any("large" in label for label in labels), labels
    assert any(DEGENERATE.search(label) for label in labels), labels
    record = RECORDS[name]
    if name in ("relu", "leaky_relu", "abs"):
        assert "kinks" in labels and any("zeros" in label for label in labels)
    if name in ("max", "max_pool2d"):
        assert "ties" in labels and record.inputs[0].ties
