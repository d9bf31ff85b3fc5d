"""The pure-Python built-in: passes the battery's small cases, never calls NumPy inside
the step, and each op pair agrees with the NumPy it replaces."""

import math
import sys

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.reference import loss_and_grads
from harness.core.registry import implementations
from harness.core.spec import NetworkSpec
from harness.impls import pure_python_impl as pp
from tests.impls.battery import assert_passes, battery


@pytest.mark.parametrize("case", battery(["float64"], seed_size=False))
def test_pure_python_passes_the_battery(case):
    assert_passes("pure-python", case)


def test_the_seed_network_is_beyond_its_declared_budget_and_the_small_ones_within():
    from harness.core.spec import SEED_SPEC

    caps = implementations()["pure-python"].capabilities
    assert caps.too_slow(SEED_SPEC, 64) is not None
    assert caps.too_slow(NetworkSpec((7, 6, 5, 3), ("relu", "tanh", "identity")), 5) is None


def test_pure_python_step_calls_no_numpy():
    case = make_case(NetworkSpec((5, 4, 3), ("sigmoid", "identity"), "cross_entropy"), 3)
    prepared = implementations()["pure-python"].prepare(case.spec, case.params)
    batch = prepared.batch(case.x, case.y)
    seen = set()

    def profile(frame, event, arg):
        if event == "c_call":
            seen.add(getattr(arg, "__module__", None) or "")
        elif event == "call":
            seen.add(frame.f_globals.get("__name__", ""))

    sys.setprofile(profile)
    try:
        loss, grads, dx = prepared.step(batch)
    finally:
        sys.setprofile(None)
    assert not [m for m in seen if m.startswith("numpy")], seen
    assert isinstance(loss, float) and isinstance(grads[0][0], list) and isinstance(grads[0][0][0], list)


RNG = np.random.default_rng(0)
X, W, B = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 3)), RNG.normal(size=2)


def test_linear_forward_is_x_w_transposed_plus_b():
    np.testing.assert_allclose(pp.linear_forward(X.tolist(), W.tolist(), B.tolist()), X @ W.T + B, rtol=1e-14)


def test_weight_gradient_skips_zero_terms_and_still_equals_the_dense_product():
    dz = RNG.normal(size=(4, 2))
    dz[1, 0] = dz[3, 0] = 0.0  # a ReLU's zeros
    dz[:, 1] = 0.0  # a unit inactive for the whole batch
    got = np.array(pp.weight_gradient(X.tolist(), dz.tolist()))
    np.testing.assert_allclose(got, dz.T @ X, rtol=1e-14)
    assert got[1].tolist() == [0.0, 0.0, 0.0]


def test_input_gradient_computes_only_where_the_relu_below_was_active():
    dz = RNG.normal(size=(4, 2))
    np.testing.assert_allclose(pp.input_gradient(W.tolist(), dz.tolist()), dz @ W, rtol=1e-14)
    active = np.maximum(X, 0.0)
    masked = np.array(pp.input_gradient(W.tolist(), dz.tolist(), active.tolist()))
    np.testing.assert_allclose(masked, np.where(active > 0, dz @ W, 0.0), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(pp.ACTIVATIONS))
def test_each_activation_backward_is_the_derivative_of_its_forward(name):
    z = [[-1.5, -0.2, 0.3, 2.0]]
    forward, backward = pp.ACTIVATIONS[name]
    a = forward(z)
    slopes = backward(a, [[1.0] * 4])[0]
    h = 1e-6
    for k, v in enumerate(z[0]):
        numeric = (forward([[v + h]])[0][0] - forward([[v - h]])[0][0]) / (2 * h)
        assert math.isclose(slopes[k], numeric, rel_tol=1e-6, abs_tol=1e-9), (name, v)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_each_loss_and_its_gradient_agree_with_the_reference(loss):
    spec = NetworkSpec((3, 2), ("identity",), loss)
    case = make_case(spec, 4, seed=1, logit_scale=100.0)
    out = (case.x @ case.params[0][0].T + case.params[0][1]).tolist()
    value, delta = pp.LOSSES[loss][1](out, case.y.tolist())
    ref_value, ref_grads = loss_and_grads(spec, case.params, case.x, case.y)
    assert value == pytest.approx(ref_value, rel=1e-13) and pp.LOSSES[loss][0](out, case.y.tolist()) == value
    np.testing.assert_allclose(np.array(delta).T @ case.x, ref_grads[0][0], rtol=1e-12, atol=1e-15)
