"""The shared update: SGD with optional heavy-ball momentum as torch.optim.SGD does it,
in place, in the parameters' own dtype."""

import importlib.util

import numpy as np
import pytest

from harness.training.sgd import SGD

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")


def test_sgd_without_momentum_subtracts_lr_times_gradient():
    W, b = np.array([[1.0, 2.0]]), np.array([3.0])
    SGD([(W, b)], lr=0.5).step([(np.array([[2.0, -4.0]]), np.array([1.0]))])
    np.testing.assert_array_equal(W, [[0.0, 4.0]])
    np.testing.assert_array_equal(b, [2.5])


def test_sgd_momentum_matches_torch_convention():
    # v1 = g1, p1 = p0 - lr v1; v2 = mu v1 + g2, p2 = p1 - lr v2 (torch.optim.SGD, dampening 0).
    p0, g1, g2, lr, mu = 1.0, 2.0, -1.0, 0.1, 0.9
    W, b = np.array([[p0]]), np.array([p0])
    sgd = SGD([(W, b)], lr=lr, momentum=mu)
    sgd.step([(np.array([[g1]]), np.array([g1]))])
    sgd.step([(np.array([[g2]]), np.array([g2]))])
    expected = p0 - lr * g1 - lr * (mu * g1 + g2)
    assert W[0, 0] == pytest.approx(expected, rel=1e-15) and b[0] == pytest.approx(expected, rel=1e-15)


@needs_torch
def test_sgd_momentum_matches_torch_optim_sgd():
    import torch

    rng = np.random.default_rng(0)
    p0, grads = rng.normal(size=(3, 2)), [rng.normal(size=(3, 2)) for _ in range(4)]
    W, b = p0.copy(), np.zeros(1)
    sgd = SGD([(W, b)], lr=0.05, momentum=0.9)
    tensor = torch.tensor(p0, requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=0.05, momentum=0.9)
    for g in grads:
        sgd.step([(g, np.zeros(1))])
        tensor.grad = torch.tensor(g)
        optimizer.step()
    np.testing.assert_allclose(W, tensor.detach().numpy(), rtol=1e-14)


def test_the_update_is_in_place_and_keeps_the_parameters_dtype():
    W, b = np.ones((2, 2), np.float32), np.ones(2, np.float32)
    params = [(W, b)]
    SGD(params, lr=0.1, momentum=0.9).step([(np.full((2, 2), 0.5, np.float32), np.full(2, 0.5, np.float32))])
    assert params[0][0] is W and W.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_array_equal(W, np.full((2, 2), np.float32(1) - np.float32(0.1) * np.float32(0.5)))


def test_without_momentum_no_velocity_is_kept():
    sgd = SGD([(np.ones((1, 1)), np.ones(1))], lr=0.1)
    assert sgd.velocity is None
    g = [(np.ones((1, 1)), np.ones(1))]
    sgd.step(g)
    sgd.step(g)
    assert sgd.params[0][0][0, 0] == pytest.approx(0.8)  # two plain steps, no memory of the first
