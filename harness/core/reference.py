"""The float64 reference: forward and backward written as plainly as NumPy allows.

Everything else is judged against this module, and this module is judged against
finite differences (``harness.finite_differences``) in the tests. The forward also
accepts complex arrays, so the complex-step oracle can run it unchanged.
"""

from __future__ import annotations

import numpy as np

from harness.core.spec import KINKED, LEAKY_RELU_SLOPE, NetworkSpec


def activate(name: str, z: np.ndarray) -> np.ndarray:
    # Branches test the real part so a complex-step perturbation follows the same
    # branch as the unperturbed point (relu is piecewise analytic).
    if name == "identity":
        return z
    if name == "relu":
        return np.where(z.real > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z.real > 0, z, LEAKY_RELU_SLOPE * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        # 1 / (1 + e^-z), computed from e^-|z| so it never overflows.
        e = np.exp(-np.where(z.real >= 0, z, -z))
        return np.where(z.real >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    raise ValueError(f"activation={name!r}: not known to the reference")


def activation_derivative(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d act / d z at ``z`` (``a = act(z)``); at a kink, the right-hand slope."""
    if name == "identity":
        return np.ones_like(z)
    if name in KINKED:
        left, right = KINKED[name]
        return np.where(z > 0, right, np.where(z < 0, left, right))
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    raise ValueError(f"activation={name!r}: not known to the reference")


def forward(spec: NetworkSpec, params, x) -> tuple[list, list]:
    """Pre-activations ``zs`` and activations ``acts`` (``acts[0] = x``) of every layer."""
    zs, acts = [], [x]
    for (W, b), name in zip(params, spec.activations):
        z = acts[-1] @ W.T + b
        zs.append(z)
        acts.append(activate(name, z))
    return zs, acts


def loss_value(spec: NetworkSpec, out, y):
    n = out.shape[0]
    if spec.loss == "cross_entropy":
        # log-softmax with the (real) max subtracted: stable for large logits.
        shifted = out - out.real.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_probs[np.arange(n), y].sum() / n
    diff = out - y
    return (diff * diff).sum() / diff.size


def loss(spec: NetworkSpec, params, x, y):
    """The mean loss; complex inputs give a complex result (for the complex step)."""
    _, acts = forward(spec, params, x)
    return loss_value(spec, acts[-1], y)


def loss_gradient_wrt_output(spec: NetworkSpec, out, y) -> np.ndarray:
    n = out.shape[0]
    if spec.loss == "cross_entropy":
        # d/d logits of mean NLL(softmax) = (softmax - onehot) / N
        p = np.exp(out - out.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(n), y] -= 1.0
        return p / n
    # d/d out of mean((out - y)^2) = 2 (out - y) / (N * out_width)
    return 2.0 * (out - y) / out.size


def loss_and_grads(spec: NetworkSpec, params, x, y, *, input_grad: bool = False):
    """``(loss, [(dW, db), ...])``, plus ``dx`` when ``input_grad``; all float64."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    x = np.asarray(x, np.float64)
    if spec.loss == "mse":
        y = np.asarray(y, np.float64)
    zs, acts = forward(spec, params, x)
    value = float(loss_value(spec, acts[-1], y))
    grads = [None] * len(params)
    delta = loss_gradient_wrt_output(spec, acts[-1], y)  # dL/da_last
    for i in reversed(range(len(params))):
        W, _ = params[i]
        delta = delta * activation_derivative(spec.activations[i], zs[i], acts[i + 1])  # dL/dz = dL/da * act'(z)
        grads[i] = (delta.T @ acts[i], delta.sum(axis=0))  # dL/dW = dz^T a_prev ; dL/db = sum_n dz
        delta = delta @ W  # dL/da_prev = dz W
    if input_grad:
        return value, grads, delta
    return value, grads
