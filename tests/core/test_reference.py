"""The reference is proven twice: against PyTorch (where installed) and against
complex-step and central differences."""

import numpy as np
import pytest

from harness.core import reference
from harness.core.cases import make_case
from harness.core.finite_differences import richardson
from harness.core.oracle import directional_derivative
from harness.core.spec import ACTIVATIONS, NetworkSpec

SPECS = [NetworkSpec((5, 4, 3), (a, "identity"), loss) for a in ACTIVATIONS for loss in ("cross_entropy", "mse")]
SPECS += [NetworkSpec((6, 5, 4, 3), ("tanh", "sigmoid", "leaky_relu"), "mse")]


def _direction(case, rng):
    return [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in case.params]


def _dot(grads, direction):
    return sum(float((g * d).sum()) for pair_g, pair_d in zip(grads, direction) for g, d in zip(pair_g, pair_d))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_reference_backprop_matches_finite_differences_to_1e_10(spec):
    case = make_case(spec, 4, seed=11)
    _, grads = reference.loss_and_grads(spec, case.params, case.x, case.y)
    rng = np.random.default_rng(0)
    for _ in range(3):
        d = _direction(case, rng)

        def along(t, d=d):
            return reference.loss(spec, [(W + t * dW, b + t * db) for (W, b), (dW, db) in zip(case.params, d)], case.x, case.y)

        fd, estimate = richardson(along, 0.0)  # extrapolated central differences
        assert estimate < 1e-10 * max(1.0, abs(fd))
        assert abs(_dot(grads, d) - fd) <= 1e-10 * max(1.0, abs(fd))
        cs = directional_derivative(spec, case.params, case.x, case.y, d)
        assert abs(_dot(grads, d) - cs) <= 1e-12 * max(1.0, abs(cs))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_reference_matches_torch(spec):
    torch = pytest.importorskip("torch")
    from harness.impls.torch_impl import forward_loss

    case = make_case(spec, 4, seed=12)
    value, grads, dx = reference.loss_and_grads(spec, case.params, case.x, case.y, input_grad=True)
    flat = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for W, b in case.params for p in (W, b)]
    x = torch.tensor(case.x, requires_grad=True)
    y = torch.tensor(case.y)
    loss = forward_loss(spec, flat, x, y)
    loss.backward()
    assert abs(loss.item() - value) <= 1e-14 * max(1, abs(value))
    for t, g in zip(flat, [g for pair in grads for g in pair]):
        np.testing.assert_allclose(t.grad.numpy(), g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-12, atol=1e-15)


def test_reference_loss_is_stable_for_large_logits():
    spec = NetworkSpec((5, 4, 3), ("relu", "identity"), "cross_entropy")
    case = make_case(spec, 4, seed=1, logit_scale=1e4)
    value, grads = reference.loss_and_grads(spec, case.params, case.x, case.y)
    assert np.isfinite(value) and all(np.isfinite(g).all() for pair in grads for g in pair)
