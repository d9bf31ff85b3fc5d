"""Reductions (sum, mean, max) over several axes and shape operators (reshape,
transpose by a permutation, concatenate) (bugs, and max's other conventions at ties, in
tests/operator_corpus/shape_ops.py). ``axis`` may arrive as a list (parameters stored as JSON in a case file): every
operator here takes a list, a tuple, an int or None.

Samples: non-adjacent axes, a square input (a transposed gradient keeps its shape),
non-involutive 3-D permutations, unequal concatenation sizes along a non-leading axis,
inputs on a grid (ties), a full reduction to a 0-d array.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import In, Operator, grid, normal, single


def axes_of(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in (axis if isinstance(axis, (list, tuple)) else (axis,)))


def restore(g, x, axis):
    """The reduced output's cotangent broadcast back over the reduced axes of x."""
    return np.zeros_like(x) + np.expand_dims(g, axes_of(axis, x.ndim))


def reduction_samples(rng, dtype, values=None):
    def draw(shape):
        return normal(rng, shape, dtype) if values is None else grid(rng, shape, dtype, values)

    return [
        ((draw((3, 3)),), {"axis": 1}, "square (3, 3) over axis 1"),
        ((draw((2, 3, 4)),), {"axis": [0, 2]}, "(2, 3, 4) over axes 0 and 2"),
        ((draw((4, 3)),), {"axis": 0}, "(4, 3) over axis 0"),
        ((draw((2, 3)),), {"axis": None}, "everything, to a 0-d array"),
        ((draw((1, 5)),), {"axis": -1}, "a single row"),
    ]


class Sum(Operator, correct=True):
    """sum over the given axes."""

    name = "sum"
    inputs = (In((2, 3, 4)),)
    params = {"axis": [0, 2]}

    def forward(self, x, axis=None):
        return np.asarray(x.sum(axis=axes_of(axis, x.ndim)))

    def vjp(self, inputs, cotangents, axis=None):
        return (restore(single(cotangents), inputs[0], axis),)

    def jvp(self, inputs, tangents, axis=None):
        return (self.forward(tangents[0], axis),)

    def samples(self, rng, dtype):
        return reduction_samples(rng, dtype)


class Mean(Sum, correct=True):
    """mean over the given axes."""

    name = "mean"

    def forward(self, x, axis=None):
        return np.asarray(x.mean(axis=axes_of(axis, x.ndim)))

    def vjp(self, inputs, cotangents, axis=None):
        x, g = inputs[0], single(cotangents)
        return (restore(g, x, axis) / (x.size // max(np.size(g), 1)),)


class Amax(Operator, correct=True):
    """max over the given axes; tied maxima share the gradient evenly (torch.amax)."""

    name = "max"
    inputs = (In((3, 4), ties=True),)
    params = {"axis": -1}

    def forward(self, x, axis=None):
        return np.asarray(x.max(axis=axes_of(axis, x.ndim)))

    def weights(self, x, axis):
        """Weights over the reduced elements, summing to 1 on each output's maxima."""
        axes = axes_of(axis, x.ndim)
        tied = (x == x.max(axis=axes, keepdims=True)).astype(x.dtype)
        return tied / tied.sum(axis=axes, keepdims=True)

    def vjp(self, inputs, cotangents, axis=None):
        x = inputs[0]
        return (self.weights(x, axis) * restore(single(cotangents), x, axis),)

    def jvp(self, inputs, tangents, axis=None):
        x = inputs[0]
        return (np.asarray((self.weights(x, axis) * tangents[0]).sum(axis=axes_of(axis, x.ndim))),)

    def samples(self, rng, dtype):
        ties = reduction_samples(rng, dtype, values=(-1.0, 0.0, 1.0))
        return ties + [((normal(rng, (3, 4), dtype),), {"axis": -1}, "no ties")]


class Permute(Operator, correct=True):
    """transpose by a permutation of the axes; the gradient goes back by the inverse."""

    name = "transpose"
    inputs = (In((2, 3, 4)),)
    params = {"perm": [1, 2, 0]}

    def forward(self, x, perm=None):
        return np.transpose(x, perm)

    def vjp(self, inputs, cotangents, perm=None):
        inverse = None if perm is None else np.argsort(perm)
        return (np.transpose(single(cotangents), inverse),)

    def jvp(self, inputs, tangents, perm=None):
        return (np.transpose(tangents[0], perm),)

    def samples(self, rng, dtype):
        return [
            ((normal(rng, (2, 3, 4), dtype),), {"perm": [1, 2, 0]}, "(2, 3, 4) by (1, 2, 0)"),
            ((normal(rng, (3, 3, 3), dtype),), {"perm": [2, 0, 1]}, "cube by (2, 0, 1): shapes agree"),
            ((normal(rng, (2, 3, 4), dtype),), {"perm": [1, 0, 2]}, "an involution (1, 0, 2)"),
            ((normal(rng, (1, 2, 1, 3), dtype),), {"perm": [3, 0, 2, 1]}, "rank 4 with width-1 axes"),
        ]


class Concatenate(Operator, correct=True):
    """concatenate three arrays along an axis; the gradient is split at the running offsets."""

    name = "concatenate"
    inputs = (In((4, 2)), In((4, 3)), In((4, 1)))
    params = {"axis": 1}

    def forward(self, a, b, c, axis=0):
        return np.concatenate([a, b, c], axis=axis)

    def vjp(self, inputs, cotangents, axis=0):
        sizes = [x.shape[axis] for x in inputs]
        return tuple(np.split(single(cotangents), np.cumsum(sizes)[:-1], axis=axis))

    def jvp(self, inputs, tangents, axis=0):
        return (np.concatenate(tangents, axis=axis),)

    def samples(self, rng, dtype):
        def case(shapes, axis, label):
            return tuple(normal(rng, s, dtype) for s in shapes), {"axis": axis}, label

        return [
            case([(4, 2), (4, 3), (4, 1)], 1, "sizes 2, 3, 1 along axis 1"),
            case([(2, 3, 1), (2, 3, 2), (2, 3, 2)], -1, "sizes 1, 2, 2 along the last axis"),
            case([(1, 2), (3, 2), (2, 2)], 0, "sizes 1, 3, 2 along axis 0"),
        ]


class Reshape(Operator, correct=True):
    """reshape to ``shape`` (one entry may be -1); the gradient is reshaped back to the input's."""

    name = "reshape"
    inputs = (In((2, 3, 4)),)
    params = {"shape": [2, -1]}

    def forward(self, x, shape=(-1,)):
        return np.reshape(x, tuple(shape))

    def vjp(self, inputs, cotangents, shape=(-1,)):
        return (np.reshape(single(cotangents), inputs[0].shape),)

    def jvp(self, inputs, tangents, shape=(-1,)):
        return (np.reshape(tangents[0], tuple(shape)),)

    def samples(self, rng, dtype):
        return [
            ((normal(rng, (2, 8, 4, 4), dtype),), {"shape": [2, -1]}, "(2, 8, 4, 4) flattened to (2, 128): a CNN's"),
            ((normal(rng, (3, 4), dtype),), {"shape": [4, 3]}, "(3, 4) to (4, 3): same shape as a transpose"),
            ((normal(rng, (6,), dtype),), {"shape": [1, 6, 1]}, "width-1 axes added"),
            ((normal(rng, (1, 1), dtype),), {"shape": [-1]}, "a single element"),
        ]
