"""Hand-written, vectorised forward and backward in NumPy."""

from __future__ import annotations

import numpy as np

from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.core.spec import LEAKY_RELU_SLOPE


class NumpyImplementation(Implementation):
    name = "numpy"
    description = "hand-written vectorised NumPy forward and backward"
    capabilities = Capabilities(dtypes={"float32", "float64"}, input_grad=True)

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return NumpyPrepared(spec, params, dtype, input_grad)


class NumpyPrepared(Prepared):
    # step(batch, out=...) writes the gradients into arrays the caller gives: a Python
    # worker passes views of the shared memory its answer goes in, so the gradients are
    # not copied once more to leave the worker (docs/worker-protocol.md, "out=").
    step_accepts_out = True

    def __init__(self, spec, params, dtype, input_grad=False):
        self.spec, self.dtype, self.input_grad = spec, np.dtype(dtype), input_grad
        self.set_params(params)

    def set_params(self, params):
        # Our own contiguous copies: the step never aliases the caller's arrays. A
        # training loop calls this every step, so same-shaped arrays are copied into.
        old = getattr(self, "params", None)
        if old and [(W.shape, b.shape) for W, b in old] == [(np.shape(W), np.shape(b)) for W, b in params]:
            for (W_own, b_own), (W, b) in zip(old, params):
                np.copyto(W_own, W, casting="same_kind")
                np.copyto(b_own, b, casting="same_kind")
            return
        self.params = [(np.array(W, self.dtype, order="C"), np.array(b, self.dtype)) for W, b in params]

    def batch(self, x, y):
        x = np.ascontiguousarray(x, self.dtype)
        y = np.asarray(y, np.intp) if self.spec.loss == "cross_entropy" else np.ascontiguousarray(y, self.dtype)
        return x, y

    def forward(self, batch):
        x, y = batch
        a = x
        for (W, b), name in zip(self.params, self.spec.activations):
            a = _activate(name, _linear(a, W, b))
        return self._loss(a, y)

    def step(self, batch, out=None):
        """``out``: optional ``[(dW, db), ...]``, C-contiguous arrays shaped and typed like
        the parameters; the gradients are written there and returned (no new arrays)."""
        x, y = batch
        if out is not None:
            out = self._check_out(out)
        zs, acts = [], [x]
        for (W, b), name in zip(self.params, self.spec.activations):
            z = _linear(acts[-1], W, b)
            zs.append(z)
            acts.append(_activate(name, z))
        loss, delta = self._loss_and_delta(acts[-1], y)
        grads = [None] * len(self.params)
        for i in range(len(self.params) - 1, -1, -1):
            W = self.params[i][0]
            delta = _activation_backward(self.spec.activations[i], zs[i], acts[i + 1], delta)
            # np.dot, not @: for a batch of one, matmul computes this (out, 1) x (1, in)
            # outer product outside BLAS, ~7x slower than the whole rest of the step.
            if out is None:
                grads[i] = (np.dot(delta.T, acts[i]), delta.sum(axis=0))
            else:
                grads[i] = (np.dot(delta.T, acts[i], out=out[i][0]), np.sum(delta, axis=0, out=out[i][1]))
            if i > 0 or self.input_grad:
                delta = delta @ W
        return loss, grads, delta if self.input_grad else None

    def _check_out(self, out):
        pairs = [tuple(pair) for pair in out]
        if len(pairs) != len(self.params):
            raise ValueError(f"out: {len(pairs)} (dW, db) pairs, expected {len(self.params)}")
        for i, (mine, theirs) in enumerate(zip(self.params, pairs)):
            for name, p, o in zip(("dW", "db"), mine, theirs):
                if not (isinstance(o, np.ndarray) and o.shape == p.shape and o.dtype == self.dtype
                        and o.flags.c_contiguous and o.flags.writeable):
                    raise ValueError(f"out[{i}] {name}: expected a writable C-contiguous {self.dtype} array of shape "
                                     f"{p.shape}, got {getattr(o, 'dtype', type(o).__name__)} {getattr(o, 'shape', '')}")
        return pairs

    def _loss(self, out, y):
        return self._loss_and_delta(out, y)[0]

    def _loss_and_delta(self, out, y):
        n = out.shape[0]
        if self.spec.loss == "cross_entropy":
            shifted = out - out.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            loss = (np.log(total[:, 0]) - shifted[rows, y]).sum() / n
            delta = exp / total  # softmax
            delta[rows, y] -= 1.0
            delta /= n
            return loss, delta
        diff = out - y
        loss = np.einsum("ij,ij->", diff, diff) / diff.size
        return loss, diff * (2.0 / diff.size)


def _linear(a, W, b):
    z = a @ W.T  # W is (out, in) C-contiguous: W.T is a free view BLAS reads transposed
    z += b  # in place: no second (batch, out) temporary
    return z


def _activate(name, z):
    if name == "relu":
        return np.maximum(z, 0.0, out=z)  # z is a fresh temporary; reuse it
    if name == "leaky_relu":
        return np.where(z > 0, z, z * z.dtype.type(LEAKY_RELU_SLOPE))
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)
    return z


def _activation_backward(name, z, a, delta):
    """dL/dz from dL/da. (``z`` may alias ``a`` for relu; ``a > 0`` is the same mask.)"""
    if name == "relu":
        return np.multiply(delta, a > 0, out=delta)  # delta is this step's own temporary
    if name == "leaky_relu":
        return np.where(a > 0, delta, delta * delta.dtype.type(LEAKY_RELU_SLOPE))
    if name == "tanh":
        return delta * (1.0 - a * a)
    if name == "sigmoid":
        return delta * a * (1.0 - a)
    return delta
