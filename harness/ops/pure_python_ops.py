"""The pure-Python provider: the MLP's operators (linear, relu, leaky_relu, sigmoid, tanh,
identity, cross_entropy, mse) on lists of floats, with the pure-Python implementation's
own loops (``harness.impls.pure_python_impl``) where they exist. Arrays become lists of
rows (leading axes folded into the rows) before the arithmetic and arrays again after
it; every number in between is a Python float.
"""

from __future__ import annotations

import math

import numpy as np

from harness.impls import pure_python_impl as pp


def _rows(x):
    """``x`` as a list of rows of Python floats (leading axes folded), and its shape."""
    x = np.asarray(x)
    return x.reshape(-1, x.shape[-1] if x.ndim else 1).tolist(), x.shape


def _array(rows, shape, dtype):
    return np.asarray(rows, dtype=np.float64).reshape(shape).astype(dtype)


def _cotangent(cotangents):
    return cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents


class Elementwise:
    """y = f(x) row by row; the VJP multiplies the cotangent by f' (from f's output, as the
    implementation's backward does)."""

    forward_rows = staticmethod(pp.identity_forward)
    backward_rows = staticmethod(pp.identity_backward)

    def forward(self, x):
        rows, shape = _rows(x)
        return _array(self.forward_rows(rows), shape, x.dtype)

    def vjp(self, inputs, cotangents):
        (x,) = inputs
        rows, shape = _rows(x)
        g, _ = _rows(_cotangent(cotangents))
        return (_array(self.backward_rows(self.forward_rows(rows), g), shape, x.dtype),)


class Relu(Elementwise):
    forward_rows = staticmethod(pp.relu_forward)
    backward_rows = staticmethod(pp.relu_backward)


class LeakyRelu(Elementwise):
    """The MLP's fixed slope 0.01: other slopes are refused, not computed wrongly."""

    forward_rows = staticmethod(pp.leaky_relu_forward)
    backward_rows = staticmethod(pp.leaky_relu_backward)

    def forward(self, x, negative_slope=0.01):
        _fixed_slope(negative_slope)
        return super().forward(x)

    def vjp(self, inputs, cotangents, negative_slope=0.01):
        _fixed_slope(negative_slope)
        return super().vjp(inputs, cotangents)


def _fixed_slope(slope):
    if slope != pp.LEAKY_RELU_SLOPE:
        raise ValueError(f"negative_slope={slope!r}: the pure-Python leaky_relu has the MLP's {pp.LEAKY_RELU_SLOPE}")


class Sigmoid(Elementwise):
    forward_rows = staticmethod(pp.sigmoid_forward)
    backward_rows = staticmethod(pp.sigmoid_backward)


class Tanh(Elementwise):
    forward_rows = staticmethod(pp.tanh_forward)
    backward_rows = staticmethod(pp.tanh_backward)


class Identity(Elementwise):
    pass


class Linear:
    """z = x W^T + b over the rows of x (leading axes folded)."""

    def forward(self, x, W, b):
        rows, shape = _rows(x)
        return _array(pp.linear_forward(rows, W.tolist(), b.tolist()), shape[:-1] + (W.shape[0],), x.dtype)

    def vjp(self, inputs, cotangents):
        x, W, _ = inputs
        rows, shape = _rows(x)
        g, _ = _rows(_cotangent(cotangents))
        dx = pp.input_gradient(W.tolist(), g)  # dx = g W
        dW = pp.weight_gradient(rows, g)  # dW = g^T x
        db = [math.fsum(column) for column in zip(*g)]  # db = the column sums of g
        return _array(dx, shape, x.dtype), _array(dW, W.shape, W.dtype), _array(db, (W.shape[0],), W.dtype)


class CrossEntropy:
    """Mean over the rows that count (label != ignore_index) of -sum_c t_c log softmax(z)_c,
    t the one-hot label smoothed by eps / C, as torch."""

    def _rows(self, logits, labels, ignore_index, label_smoothing):
        rows = logits.tolist()
        counted = [(row, label) for row, label in zip(rows, labels.tolist()) if label != ignore_index]
        eps, width = label_smoothing, len(rows[0])
        targets = [[(1 - eps) * (c == label) + eps / width for c in range(width)] for _, label in counted]
        return rows, counted, targets

    def forward(self, logits, labels, ignore_index=-100, label_smoothing=0.0):
        _, counted, targets = self._rows(logits, labels, ignore_index, label_smoothing)
        total = math.fsum(-math.fsum(map(math.prod, zip(t, pp._log_softmax(row)))) for (row, _), t in zip(counted, targets))
        return np.asarray(total / len(counted), dtype=logits.dtype)

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        rows, _, targets = self._rows(logits, labels, ignore_index, label_smoothing)
        scale = float(_cotangent(cotangents)) / len(targets)
        it = iter(targets)
        grads = []
        for row, label in zip(rows, labels.tolist()):
            if label == ignore_index:
                grads.append([0.0] * len(row))
                continue
            p = [math.exp(v) for v in pp._log_softmax(row)]  # d/dz = softmax(z) - t
            grads.append([(pc - tc) * scale for pc, tc in zip(p, next(it))])
        return _array(grads, logits.shape, logits.dtype), None


class Mse:
    """mean((y - t)^2) over every element; dy = 2 (y - t) / size = -dt."""

    def forward(self, y, target):
        rows, _ = _rows(y)
        return np.asarray(pp.mse_forward(rows, _rows(target)[0]), dtype=y.dtype)

    def vjp(self, inputs, cotangents):
        y, target = inputs
        rows, shape = _rows(y)
        _, dy = pp.mse_and_gradient(rows, _rows(target)[0])
        g = float(_cotangent(cotangents))
        dy = [[v * g for v in row] for row in dy]
        return _array(dy, shape, y.dtype), _array([[-v for v in row] for row in dy], shape, target.dtype)


PURE_PYTHON_OPERATORS = {"linear": Linear, "relu": Relu, "leaky_relu": LeakyRelu, "sigmoid": Sigmoid, "tanh": Tanh,
                         "identity": Identity, "cross_entropy": CrossEntropy, "mse": Mse}
