"""A handful of operators written as ``harness.Mapping`` in NumPy, forward, VJP and
(some) JVP: the examples of the README and the subjects of the tests. Each backward
reads as its forward in reverse; every one is correct (broken variants live in the
tests). The valid conventions at kinks and ties used here: relu'(0) = 0, abs'(0) = 0,
max and max-pool send the gradient to the first of tied elements.
"""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Input, Mapping


def relu_forward(x):
    return np.maximum(x, 0)


def relu_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (np.where(x > 0, g, 0).astype(x.dtype),)  # relu'(x) = [x > 0]


def relu_jvp(inputs, tangents):
    (x,), (t,) = inputs, tangents
    return (np.where(x > 0, t, 0).astype(x.dtype),)


relu = Mapping("relu", relu_forward, relu_vjp, relu_jvp, inputs=[Input((4, 5), kinks=(0.0,))],
               dtypes=("float32", "float64"))


def abs_forward(x):
    return np.abs(x)


def abs_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return ((np.sign(x) * g).astype(x.dtype),)  # |x|' = sign(x), 0 at 0


absolute = Mapping("abs", abs_forward, abs_vjp, inputs=[Input((3, 4), kinks=(0.0,))], dtypes=("float32", "float64"))


def softmax_forward(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))  # the max trick: no overflow
    return e / e.sum(axis=axis, keepdims=True)


def softmax_reference(x, axis=-1):
    """The textbook formula in float64 (no max trick): what the forward must equal."""
    e = np.exp(np.asarray(x, np.float64))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_vjp(inputs, cotangents, axis=-1):
    (x,), (g,) = inputs, cotangents
    s = softmax_forward(x, axis)
    return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)  # ds_i/dx_j = s_i (d_ij - s_j)


def softmax_jvp(inputs, tangents, axis=-1):
    (x,), (t,) = inputs, tangents
    s = softmax_forward(x, axis)
    return (s * (t - (t * s).sum(axis=axis, keepdims=True)),)  # the Jacobian is symmetric


softmax = Mapping("softmax", softmax_forward, softmax_vjp, softmax_jvp, inputs=[Input((4, 6))],
                  reference=softmax_reference, dtypes=("float32", "float64"))


def matmul_forward(a, b):
    return a @ b


def matmul_vjp(inputs, cotangents):
    (a, b), (g,) = inputs, cotangents
    return g @ b.T, a.T @ g  # y = a b: da = g b^T, db = a^T g


def matmul_jvp(inputs, tangents):
    (a, b), (ta, tb) = inputs, tangents
    return (ta @ b + a @ tb,)


matmul = Mapping("matmul", matmul_forward, matmul_vjp, matmul_jvp, inputs=[Input((3, 4)), Input((4, 5))],
                 dtypes=("float32", "float64"))


def max_forward(x, axis=-1):
    return np.max(x, axis=axis)


def max_vjp(inputs, cotangents, axis=-1):
    (x,), (g,) = inputs, cotangents
    first = np.zeros_like(x)  # the gradient goes to the first maximal element
    np.put_along_axis(first, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
    return (first * np.expand_dims(g, axis),)


maximum = Mapping("max", max_forward, max_vjp, inputs=[Input((3, 6), ties=True)], dtypes=("float32", "float64"))


def max_pool1d_forward(x, kernel=2, stride=1):
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=-1)[..., ::stride, :]
    return windows.max(axis=-1)


def max_pool1d_vjp(inputs, cotangents, kernel=2, stride=1):
    (x,), (g,) = inputs, cotangents
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=-1)[..., ::stride, :]
    first = np.argmax(windows, axis=-1)  # the first maximal element of each window
    dx = np.zeros_like(x)
    starts = np.arange(g.shape[-1]) * stride
    rows = np.indices(g.shape[:-1]).reshape(g.ndim - 1, -1).T if g.ndim > 1 else [()]
    for row in rows:
        np.add.at(dx[tuple(row)], starts + first[tuple(row)], g[tuple(row)])  # overlapping windows add up
    return (dx,)


max_pool1d = Mapping("max_pool1d", max_pool1d_forward, max_pool1d_vjp, inputs=[Input((2, 9), ties=True)],
                     params={"kernel": 3, "stride": 2}, dtypes=("float32", "float64"))


def conv1d_forward(x, w):
    """Cross-correlation, as deep-learning frameworks define convolution: x (N, C, L),
    w (O, C, K) -> (N, O, L - K + 1)."""
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=-1)  # (N, C, L', K)
    return np.einsum("nclk,ock->nol", windows, w)


def conv1d_vjp(inputs, cotangents):
    (x, w), (g,) = inputs, cotangents
    k = w.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=-1)
    dw = np.einsum("nclk,nol->ock", windows, g)
    # dx: a full convolution of g with the kernel, i.e. a correlation with the kernel flipped
    padded = np.pad(g, ((0, 0), (0, 0), (k - 1, k - 1)))
    dx = np.einsum("nolk,ock->ncl", np.lib.stride_tricks.sliding_window_view(padded, k, axis=-1), w[..., ::-1])
    return dx, dw


conv1d = Mapping("conv1d", conv1d_forward, conv1d_vjp, inputs=[Input((2, 3, 8)), Input((4, 3, 3))],
                 dtypes=("float32", "float64"))


def embedding_forward(weight, indices):
    return weight[indices]


def embedding_vjp(inputs, cotangents):
    (weight, indices), (g,) = inputs, cotangents
    dw = np.zeros_like(weight)
    np.add.at(dw, indices, g)  # repeated indices accumulate (dw[indices] += g would count them once)
    return dw, None


embedding = Mapping("embedding", embedding_forward, embedding_vjp,
                    inputs=[Input((5, 3)), Input((7,), kind="int", high=5)], dtypes=("float32", "float64"))

EXAMPLES = (relu, absolute, softmax, matmul, maximum, max_pool1d, conv1d, embedding)
