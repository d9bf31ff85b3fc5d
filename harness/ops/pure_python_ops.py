"""The pure-Python provider: the MLP's operators (linear, relu, leaky_relu, sigmoid, tanh,
identity, cross_entropy, mse) on lists of floats, written once. The pure-Python built-in
implementation (``harness.impls.pure_python_impl``) runs its MLP as a chain of these
list operators (``LIST_OPERATORS``); the provider the mapping checks judge
(``PURE_PYTHON_OPERATORS``) is the same operators on arrays: a float array becomes a list
of rows (leading axes folded into the rows) before the arithmetic and an array of its
input's shape and dtype after it; every number in between is a Python float.

The inner loops run in C through ``sum(map(mul, row, col))`` and ``zip(*m)``
transposes, so this is as fast as pure Python allows without turning into a graph of
scalar objects. The weight gradient skips the zero terms of whichever factor has more
of them (a ReLU's output feeding the layer, or dL/dz behind a ReLU): adding ``0.0``
times a finite number changes nothing (times an inf or NaN it would have given NaN).
"""

from __future__ import annotations

import math
from itertools import compress, repeat
from operator import index as as_index
from operator import mul

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


def input_gradient(W, dz):
    """dx = dz W."""
    W_t = list(zip(*W))
    return [[sum(map(mul, d, col)) for col in W_t] for d in dz]


def _zeros(rows):
    return sum(row.count(0.0) for row in rows)


class Linear:
    """z = x W^T + b on rows; the backward dx = g W (skipped for a chain's first layer),
    dW = g^T x and db the column sums of g."""

    skips_input_grad = True

    def forward(self, x, W, b):
        return linear_forward(x, W, b)

    def vjp(self, inputs, cotangents, input_grad=True):
        x, W, _ = inputs
        (g,) = cotangents
        if _zeros(x) > _zeros(g):  # x holds a ReLU's zeros: skip them, (x^T g)^T
            dW = [list(row) for row in zip(*weight_gradient(g, x))]
        else:
            dW = weight_gradient(x, g)
        db = [math.fsum(column) for column in zip(*g)]
        return input_gradient(W, g) if input_grad else None, dW, db


# --- activations: y = f(z) row by row; the backward multiplies by f'(z) ----------


def _sigmoid(v):
    if v >= 0.0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


class Elementwise:
    """The backward multiplies the cotangent by ``slope(z)``, f' at each element."""

    def vjp(self, inputs, cotangents):
        (z,) = inputs
        (g,) = cotangents
        return ([[d * self.slope(v) for v, d in zip(zr, gr)] for zr, gr in zip(z, g)],)


class Relu(Elementwise):
    """relu'(0) = 0, as torch."""

    def forward(self, z):
        return [[v if v > 0.0 else 0.0 for v in row] for row in z]

    def vjp(self, inputs, cotangents):
        (z,) = inputs
        (g,) = cotangents
        return ([[d if v > 0.0 else 0.0 for v, d in zip(zr, gr)] for zr, gr in zip(z, g)],)


class LeakyRelu(Elementwise):
    """leaky_relu'(0) = the slope, as torch."""

    def forward(self, z, negative_slope=0.01):
        return [[v if v > 0.0 else negative_slope * v for v in row] for row in z]

    def vjp(self, inputs, cotangents, negative_slope=0.01):
        (z,) = inputs
        (g,) = cotangents
        return ([[d if v > 0.0 else negative_slope * d for v, d in zip(zr, gr)] for zr, gr in zip(z, g)],)


class Tanh(Elementwise):
    def forward(self, z):
        return [list(map(math.tanh, row)) for row in z]

    def slope(self, v):
        t = math.tanh(v)
        return 1.0 - t * t  # from the output, as torch


class Sigmoid(Elementwise):
    def forward(self, z):
        return [list(map(_sigmoid, row)) for row in z]

    def slope(self, v):
        s = _sigmoid(v)
        return s * (1.0 - s)  # from the output, as torch


class Identity(Elementwise):
    def forward(self, z):
        return [list(row) for row in z]

    def vjp(self, inputs, cotangents):
        (g,) = cotangents
        return ([list(row) for row in g],)


# --- losses: the mean over the batch, a float ------------------------------------


def _log_softmax(row):
    m = max(row)
    log_total = math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - m - log_total for v in row]


def _class_index(label, row: int, n_classes: int, ignore_index) -> int:
    """``label`` as a class index, or ``ValueError`` naming it (a negative one would index
    from the end of the row: a wrong loss and no error)."""
    try:
        index = as_index(label)
    except TypeError:
        index = -1
    if not 0 <= index < n_classes:
        raise ValueError(f"cross_entropy: label {label!r} at row {row}; expected a class index 0..{n_classes - 1} "
                         f"(or ignore_index={ignore_index}) for {n_classes} classes")
    return index


class CrossEntropy:
    """Mean over the rows that count (label != ignore_index) of -sum_c t_c log softmax(z)_c,
    t the one-hot label smoothed by eps / C, as torch; d/dz = (softmax(z) - t) / count."""

    def forward(self, logits, labels, ignore_index=-100, label_smoothing=0.0):
        eps, total, count = label_smoothing, [], 0
        for i, (row, label) in enumerate(zip(logits, labels)):
            if label == ignore_index:
                continue
            label = _class_index(label, i, len(row), ignore_index)
            log_p = _log_softmax(row)
            count += 1
            total.append((1 - eps) * log_p[label] + (eps / len(row) * math.fsum(log_p) if eps else 0.0))
        return -math.fsum(total) / count

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        (g,) = cotangents
        eps = label_smoothing
        scale = float(g) / sum(1 for label in labels if label != ignore_index)
        grads = []
        for i, (row, label) in enumerate(zip(logits, labels)):
            if label == ignore_index:
                grads.append([0.0] * len(row))
                continue
            label = _class_index(label, i, len(row), ignore_index)
            d = [(math.exp(v) - eps / len(row)) * scale for v in _log_softmax(row)]
            d[label] -= (1 - eps) * scale
            grads.append(d)
        return grads, None


class Mse:
    """mean((y - t)^2) over every element; dy = 2 (y - t) / size = -dt."""

    flowing = (0, 1)  # the target is shaped as the output: rows too

    def forward(self, y, target):
        size = len(y) * len(y[0])
        return math.fsum((o - t) ** 2 for orow, trow in zip(y, target) for o, t in zip(orow, trow)) / size

    def vjp(self, inputs, cotangents):
        y, target = inputs
        (g,) = cotangents
        scale = 2.0 * float(g) / (len(y) * len(y[0]))
        dy = [[scale * (o - t) for o, t in zip(orow, trow)] for orow, trow in zip(y, target)]
        return dy, [[-v for v in row] for row in dy]


LIST_OPERATORS = {"linear": Linear, "relu": Relu, "leaky_relu": LeakyRelu, "sigmoid": Sigmoid, "tanh": Tanh,
                  "identity": Identity, "cross_entropy": CrossEntropy, "mse": Mse}


# --- the same operators on arrays: what the provider gives the mapping checks ----


class OnArrays:
    """A list operator on arrays: what flows in (the first input, and mse's target) as rows,
    the weights and labels as plain lists; the answers as arrays of the inputs' shapes
    and dtypes (a loss as a 0-d array)."""

    def __init__(self, operator):
        self.operator = operator
        self.skips_input_grad = getattr(operator, "skips_input_grad", False)

    def _lists(self, inputs):
        import numpy as np

        lists = []
        for k, x in enumerate(inputs):
            x = np.asarray(x)
            if k in getattr(self.operator, "flowing", (0,)):
                x = x.reshape(-1, x.shape[-1] if x.ndim else 1)  # rows, leading axes folded
            lists.append(x.astype(np.float64).tolist() if x.dtype.kind == "f" else x.tolist())
        return lists

    def forward(self, *inputs, **params):
        import numpy as np

        x = np.asarray(inputs[0])
        out = self.operator.forward(*self._lists(inputs), **params)
        if isinstance(out, float):
            return np.asarray(out, dtype=x.dtype)
        return np.asarray(out, dtype=np.float64).reshape(x.shape[:-1] + (-1,)).astype(x.dtype)

    def vjp(self, inputs, cotangents, **params):
        import numpy as np

        g = cotangents[0] if isinstance(cotangents, (tuple, list)) else cotangents
        g = np.asarray(g)
        (g_list,) = self._lists((g,)) if g.ndim else (float(g),)
        answer = self.operator.vjp(self._lists(inputs), (g_list,), **params)
        return tuple(None if d is None else
                     np.asarray(d, dtype=np.float64).reshape(np.shape(x)).astype(np.asarray(x).dtype)
                     for d, x in zip(answer, inputs))


def _on_arrays(operator):
    def build():
        return OnArrays(operator())

    build.__name__ = f"pure_python_{operator.__name__}"
    return build


PURE_PYTHON_OPERATORS = {name: _on_arrays(operator) for name, operator in LIST_OPERATORS.items()}
