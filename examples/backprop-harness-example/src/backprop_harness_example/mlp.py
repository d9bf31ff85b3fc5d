"""A NumPy multilayer perceptron with hand-written backprop, in the two forms the
harness accepts: an ``Implementation`` class and the plain function shortcut."""

from __future__ import annotations

import numpy as np

from harness import Capabilities, Implementation, Prepared

LEAKY_SLOPE = 0.01


def _act(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    return z


def _act_grad(name, z, a):
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1, LEAKY_SLOPE).astype(z.dtype)
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    return np.ones_like(z)


def loss_and_grads(spec, params, x, y):
    """Mean loss and ``[(dW, db), ...]`` in the dtype of ``x``."""
    zs, acts = [], [x]
    for (W, b), name in zip(params, spec.activations):
        zs.append(acts[-1] @ W.T + b)
        acts.append(_act(name, zs[-1]))
    out, n = acts[-1], x.shape[0]
    if spec.loss == "cross_entropy":
        shifted = out - out.max(axis=1, keepdims=True)  # no overflow for large logits
        exp = np.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        loss = (np.log(total[:, 0]) - shifted[np.arange(n), y]).mean()
        delta = exp / total  # softmax
        delta[np.arange(n), y] -= 1
        delta /= n  # dL/dout of the mean
    else:
        loss = ((out - y) ** 2).mean()
        delta = 2 * (out - y) / out.size
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        delta = delta * _act_grad(spec.activations[i], zs[i], acts[i + 1])  # dL/dz
        grads[i] = (delta.T @ acts[i], delta.sum(axis=0))
        delta = delta @ params[i][0]  # dL/da_prev
    return loss, grads


def backprop(spec, params, x, y):
    """Hand-written NumPy backprop (function shortcut)."""
    return loss_and_grads(spec, params, x, y)


class ExamplePrepared(Prepared):
    def __init__(self, spec, params, dtype):
        self.spec = spec
        self.params = [(np.array(W, dtype), np.array(b, dtype)) for W, b in params]

    def step(self, batch):
        x, y = batch
        return loss_and_grads(self.spec, self.params, x, y)

    def set_params(self, params):
        self.params = [(np.array(W), np.array(b)) for W, b in params]


class ExampleImplementation(Implementation):
    name = "example-numpy"
    description = "hand-written NumPy backprop (worked example package)"
    capabilities = Capabilities(dtypes={"float32", "float64"})

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return ExamplePrepared(spec, params, dtype)
