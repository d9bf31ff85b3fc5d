"""Backprop in pure Python: matrices are lists of rows, numbers are floats.

Each op is a pair, forward and backward. The inner loops run in C through
``sum(map(mul, row, col))`` and ``zip(*m)`` transposes, so this is as fast as pure
Python allows without turning into a graph of scalar objects.
"""

from __future__ import annotations

import math
from operator import mul

from harness.registry import Capabilities, Implementation, Prepared
from harness.spec import LEAKY_RELU_SLOPE


class PurePythonImplementation(Implementation):
    name = "pure-python"
    description = "lists of floats, no NumPy inside the step"
    capabilities = Capabilities(dtypes={"float64"}, input_grad=True)

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return PurePythonPrepared(spec, params)


class PurePythonPrepared(Prepared):
    def __init__(self, spec, params):
        self.spec = spec
        self.set_params(params)

    def set_params(self, params):
        self.params = [(W.tolist(), b.tolist()) for W, b in params]

    def batch(self, x, y):
        return x.tolist(), y.tolist()

    def to_numpy(self, result):
        import numpy as np

        loss, grads, dx = result
        dx = None if dx is None else np.array(dx)
        return super().to_numpy((loss, [(np.array(dW), np.array(db)) for dW, db in grads], dx))

    def forward(self, batch):
        x, y = batch
        a = x
        for (W, b), name in zip(self.params, self.spec.activations):
            a = ACTIVATIONS[name][0](linear_forward(a, W, b))
        return LOSSES[self.spec.loss][0](a, y)

    def step(self, batch):
        x, y = batch
        acts = [x]
        for (W, b), name in zip(self.params, self.spec.activations):
            acts.append(ACTIVATIONS[name][0](linear_forward(acts[-1], W, b)))
        loss_forward, loss_backward = LOSSES[self.spec.loss]
        loss = loss_forward(acts[-1], y)
        delta = loss_backward(acts[-1], y)  # dL/da for the last layer
        grads = [None] * len(self.params)
        for i in range(len(self.params) - 1, -1, -1):
            delta = ACTIVATIONS[self.spec.activations[i]][1](acts[i + 1], delta)  # dL/dz
            grads[i], delta = linear_backward(acts[i], self.params[i][0], delta, i > 0 or self.input_grad)
        return loss, grads, delta


# --- linear layer: z = x W^T + b -------------------------------------------------


def linear_forward(x, W, b):
    # z[n][j] = sum_k x[n][k] W[j][k] + b[j]: each row of x dotted with each row of W
    return [[sum(map(mul, row, w)) + bj for w, bj in zip(W, b)] for row in x]


def linear_backward(x, W, dz, want_dx=True):
    dz_t = list(zip(*dz))
    x_t = list(zip(*x))
    dW = [[sum(map(mul, d, col)) for col in x_t] for d in dz_t]  # dW = dz^T x
    db = [sum(d) for d in dz_t]  # db = sum over the batch of dz
    if not want_dx:  # the first layer's input needs no gradient unless asked for
        return (dW, db), None
    W_t = list(zip(*W))
    dx = [[sum(map(mul, d, col)) for col in W_t] for d in dz]  # dx = dz W
    return (dW, db), dx


# --- activations: forward a = f(z); backward dL/dz = dL/da * f'(z), from a ----------


def relu_forward(z):
    return [[v if v > 0.0 else 0.0 for v in row] for row in z]


def relu_backward(a, da):
    return [[g if v > 0.0 else 0.0 for v, g in zip(ar, dr)] for ar, dr in zip(a, da)]


def leaky_relu_forward(z):
    return [[v if v > 0.0 else LEAKY_RELU_SLOPE * v for v in row] for row in z]


def leaky_relu_backward(a, da):
    return [[g if v > 0.0 else LEAKY_RELU_SLOPE * g for v, g in zip(ar, dr)] for ar, dr in zip(a, da)]


def tanh_forward(z):
    return [list(map(math.tanh, row)) for row in z]


def tanh_backward(a, da):
    return [[g * (1.0 - v * v) for v, g in zip(ar, dr)] for ar, dr in zip(a, da)]  # tanh' = 1 - tanh^2


def _sigmoid(v):
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def sigmoid_forward(z):
    return [list(map(_sigmoid, row)) for row in z]


def sigmoid_backward(a, da):
    return [[g * v * (1.0 - v) for v, g in zip(ar, dr)] for ar, dr in zip(a, da)]  # s' = s (1 - s)


def identity_forward(z):
    return z


def identity_backward(a, da):
    return da


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "identity": (identity_forward, identity_backward),
}


# --- losses: forward the batch mean; backward dL/d(output) --------------------------


def _log_softmax(row):
    m = max(row)
    log_total = math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - m - log_total for v in row]


def cross_entropy_forward(out, y):
    # mean over the batch of -log softmax(out)[label]
    return -math.fsum(_log_softmax(row)[label] for row, label in zip(out, y)) / len(out)


def cross_entropy_backward(out, y):
    # (softmax(out) - onehot(y)) / N
    n = len(out)
    grad = []
    for row, label in zip(out, y):
        g = [math.exp(v) / n for v in _log_softmax(row)]
        g[label] -= 1.0 / n
        grad.append(g)
    return grad


def mse_forward(out, y):
    # mean over every element of (out - y)^2
    size = len(out) * len(out[0])
    return math.fsum((o - t) ** 2 for orow, trow in zip(out, y) for o, t in zip(orow, trow)) / size


def mse_backward(out, y):
    # 2 (out - y) / (N * width)
    scale = 2.0 / (len(out) * len(out[0]))
    return [[scale * (o - t) for o, t in zip(orow, trow)] for orow, trow in zip(out, y)]


LOSSES = {
    "cross_entropy": (cross_entropy_forward, cross_entropy_backward),
    "mse": (mse_forward, mse_backward),
}
