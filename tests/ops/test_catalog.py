"""The catalogue holds the operators the issue names, each with a float64 reference,
inputs to draw, hand-made samples and its non-differentiable inputs."""

import numpy as np

from harness.ops.catalog import NUMPY_OPERATORS, RECORDS

ISSUE_OPERATORS = {
    "linear", "matmul", "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "softmax", "log_softmax", "cross_entropy",
    "mse", "layer_norm", "batch_norm", "embedding", "gelu", "silu", "relu", "leaky_relu", "sigmoid", "tanh",
    "logsumexp", "attention", "sum", "mean", "max", "reshape", "transpose", "concatenate",
}


def test_every_operator_the_issue_names_is_there():
    assert ISSUE_OPERATORS <= set(RECORDS)
    assert len(RECORDS) >= 20


def test_indices_and_labels_are_the_nondifferentiable_inputs():
    found = {name: r.nondifferentiable for name, r in RECORDS.items() if r.nondifferentiable}
    assert found == {"embedding": ("indices",), "cross_entropy": ("labels",)}


def test_every_reference_runs_in_float64_on_every_sample():
    rng = np.random.default_rng(0)
    for name, record in RECORDS.items():
        samples = record.samples(rng, np.dtype("float32"))
        assert samples, name
        for inputs, params, label in samples:
            out = np.asarray(record.reference(*inputs, **{**record.params, **params}))
            assert out.dtype == np.float64, (name, label, out.dtype)


def test_every_record_has_a_numpy_operator():
    assert set(NUMPY_OPERATORS) == set(RECORDS)
