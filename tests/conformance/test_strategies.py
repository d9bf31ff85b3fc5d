"""The strategies draw cases within declared capabilities and bounds, reach kinks and
large logits, keep compiled implementations to a few shapes, and shrink small."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from harness.checks.planner import COMPILED_SHAPES
from harness.conformance import strategies
from harness.core.protocol import Capabilities, Implementation

FEW = settings(max_examples=40, deadline=None, database=None)
NARROW = Capabilities(activations={"relu", "identity"}, losses={"mse"}, dtypes={"float32"})


@FEW
@given(strategies.specs(NARROW))
def test_specs_stay_within_declared_capabilities_and_bounds(spec):
    assert set(spec.activations) <= {"relu", "identity"}
    assert spec.loss == "mse"
    assert 1 <= spec.n_layers <= strategies.MAX_LAYERS
    assert all(1 <= w <= strategies.MAX_WIDTH for w in spec.sizes)


@FEW
@given(strategies.cases(NARROW))
def test_cases_are_consistent_and_in_the_declared_dtype(case):
    assert case.dtype == "float32"
    assert 1 <= case.batch <= strategies.MAX_BATCH
    assert case.x.shape == (case.batch, case.spec.sizes[0])
    for (W, b), (w_shape, b_shape) in zip(case.params, case.spec.shapes()):
        assert W.shape == w_shape and b.shape == b_shape
        assert W.dtype == b.dtype == np.float32
    assert case.y.shape == (case.batch, case.spec.sizes[-1]) and case.y.dtype == np.float32


@FEW
@given(strategies.cases(Capabilities(losses={"cross_entropy"})))
def test_cross_entropy_targets_are_labels_in_range(case):
    assert case.y.dtype == np.int64 and case.y.shape == (case.batch,)
    assert ((0 <= case.y) & (case.y < case.spec.sizes[-1])).all()


def _first_layer_z(case):
    W, b = case.params[0]
    return case.x @ W.T + b  # in the case's own dtype


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_some_cases_put_relu_preactivations_exactly_on_the_kink(dtype):
    caps = Capabilities(activations={"relu"}, dtypes={dtype})

    def on_kink_with_nonzero_weights(case):
        W, _ = case.params[0]
        z = _first_layer_z(case)
        return case.label.startswith("on kinks") and np.any((z == 0) & (np.abs(W).sum(axis=1) > 0)[None, :])

    case = find(strategies.cases(caps), on_kink_with_nonzero_weights, settings=settings(max_examples=500, database=None))
    assert case.x.dtype == np.dtype(dtype)


def test_some_cases_have_logits_past_float32_exp_overflow():
    caps = Capabilities(activations={"identity"}, losses={"cross_entropy"}, dtypes={"float32"})

    def large_logits(case):
        a = case.x
        for W, b in case.params:
            a = a @ W.T + b
        return np.abs(a).max() > 88.7  # exp overflows float32 past log(3.4e38)

    find(strategies.cases(caps), large_logits, settings=settings(max_examples=500, database=None))


def test_failures_shrink_to_a_minimal_network_and_batch():
    # Any case with two layers and a batch of two: the shrinker must reach the smallest.
    case = find(strategies.cases(), lambda c: c.spec.n_layers >= 2 and c.batch >= 2, settings=settings(database=None))
    assert case.spec.sizes == (1, 1, 1)
    assert case.batch == 2
    assert all(not W.any() and not b.any() for W, b in case.params)


class _Compiling(Implementation):
    name = "compiling-test-double"
    capabilities = Capabilities(dtypes={"float32", "float64"}, compiles_per_shape=True)


class _CompilingFirstProtocol(Implementation):
    """Declared the way the first protocol said: an attribute beside the capabilities."""

    name = "compiling-first-protocol"
    capabilities = Capabilities(dtypes={"float32", "float64"})
    compiles_per_shape = True


@FEW
@given(st.one_of(strategies.cases_for(_Compiling()), strategies.cases_for(_CompilingFirstProtocol)))
def test_implementations_that_compile_per_shape_get_only_the_fixed_shapes(case):
    allowed = {(spec, batch) for spec, batch in COMPILED_SHAPES}
    assert (case.spec, case.batch) in allowed


def test_no_declared_dtype_is_an_error_naming_the_problem():
    with pytest.raises(ValueError, match="no dtype"):
        strategies.dtypes(Capabilities(dtypes=set()))
