"""Backprop in pure Python: matrices are lists of rows, numbers are floats.

Each op is a pair, forward and backward. The inner loops run in C through
``sum(map(mul, row, col))`` and ``zip(*m)`` transposes, so this is as fast as pure
Python allows without turning into a graph of scalar objects. Two savings come from
the ReLU: about half of dL/dz (or of the next layer's input) is exactly zero, and the
weight gradient skips those terms (adding ``0.0`` times a finite number changes
nothing; times an inf or NaN it would have given NaN); and dL/da of a layer that a
ReLU feeds is computed only where the ReLU was active, since it is zeroed everywhere
else.
"""

from __future__ import annotations

import math
from itertools import compress, repeat
from operator import mul

from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.core.spec import LEAKY_RELU_SLOPE


class PurePythonImplementation(Implementation):
    name = "pure-python"
    description = "lists of floats, no NumPy inside the step"
    # A step runs ~2-3 M multiply-adds a second: the seed's network at batch 64 takes
    # seconds, and selections made on the user's behalf leave such cases out.
    capabilities = Capabilities(dtypes={"float64"}, input_grad=True, max_multiply_adds=1_000_000)

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return PurePythonPrepared(spec, params, input_grad)


class PurePythonPrepared(Prepared):
    def __init__(self, spec, params, input_grad=False):
        self.spec, self.input_grad = spec, input_grad
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
        activations = self.spec.activations
        acts = [x]
        for (W, b), name in zip(self.params, activations):
            acts.append(ACTIVATIONS[name][0](linear_forward(acts[-1], W, b)))
        loss, delta = LOSSES[self.spec.loss][1](acts[-1], y)  # delta = dL/da of the last layer
        grads = [None] * len(self.params)
        masked = False  # whether delta is already dL/dz (a ReLU's zeros applied)
        for i in range(len(self.params) - 1, -1, -1):
            if not masked:
                delta = ACTIVATIONS[activations[i]][1](acts[i + 1], delta)  # dL/dz
            W = self.params[i][0]
            if i > 0 and activations[i - 1] == "relu" and activations[i] != "relu":
                # here the layer's input holds the ReLU's zeros, not dL/dz: skip those
                dW = [list(row) for row in zip(*weight_gradient(delta, acts[i]))]  # (x^T dz)^T
            else:
                dW = weight_gradient(acts[i], delta)
            grads[i] = (dW, [sum(d) for d in zip(*delta)])
            if i == 0 and not self.input_grad:  # the input needs no gradient unless asked for
                delta = None
                break
            # A ReLU below zeroes dL/da wherever it was inactive: compute only the rest.
            masked = i > 0 and activations[i - 1] == "relu"
            delta = input_gradient(W, delta, acts[i] if masked else None)
        return loss, grads, delta


# --- linear layer: z = x W^T + b -------------------------------------------------


def linear_forward(x, W, b):
    # z[n][j] = sum_k x[n][k] W[j][k] + b[j]: each row of x dotted with each row of W
    return [[sum(map(mul, row, w)) + bj for w, bj in zip(W, b)] for row in x]


def weight_gradient(x, dz):
    """dW = dz^T x: row j sums, over the batch, dz[n][j] x[n], skipping the zero dz[n][j].

    The sums run in the batch's order, as the dense product's would.
    """
    width = len(x[0])
    dW = []
    for d in zip(*dz):  # column j of dz: one entry per example
        scale = list(compress(d, d))  # the nonzero entries, and the rows of x they multiply
        if not scale:
            dW.append([0.0] * width)
            continue
        rows = compress(x, d)
        dW.append(list(map(sum, map(map, repeat(mul), repeat(scale), zip(*rows)))))
    return dW


def input_gradient(W, dz, active=None):
    """dx = dz W; where ``active`` (the ReLU's output) is not positive, 0.0 instead."""
    W_t = list(zip(*W))
    if active is None:
        return [[sum(map(mul, d, col)) for col in W_t] for d in dz]
    return [[sum(map(mul, d, col)) if a > 0.0 else 0.0 for a, col in zip(arow, W_t)] for d, arow in zip(dz, active)]


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


# --- losses: the batch mean, and with it dL/d(output) --------------------------


def _log_softmax(row):
    m = max(row)
    log_total = math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - m - log_total for v in row]


def cross_entropy_forward(out, y):
    # mean over the batch of -log softmax(out)[label]
    return -math.fsum(_log_softmax(row)[label] for row, label in zip(out, y)) / len(out)


def mse_forward(out, y):
    # mean over every element of (out - y)^2
    size = len(out) * len(out[0])
    return math.fsum((o - t) ** 2 for orow, trow in zip(out, y) for o, t in zip(orow, trow)) / size


def mse_and_gradient(out, y):
    # the loss, and its gradient 2 (out - y) / (N * width)
    scale = 2.0 / (len(out) * len(out[0]))
    return mse_forward(out, y), [[scale * (o - t) for o, t in zip(orow, trow)] for orow, trow in zip(out, y)]


def cross_entropy_and_gradient(out, y):
    # the loss, and its gradient (softmax(out) - onehot(y)) / N, from one log-softmax a row
    n = len(out)
    total, grad = [], []
    for row, label in zip(out, y):
        log_p = _log_softmax(row)
        total.append(log_p[label])
        g = [math.exp(v) / n for v in log_p]
        g[label] -= 1.0 / n
        grad.append(g)
    return -math.fsum(total) / n, grad


LOSSES = {  # name: (loss, (loss, dL/d(output)))
    "cross_entropy": (cross_entropy_forward, cross_entropy_and_gradient),
    "mse": (mse_forward, mse_and_gradient),
}
