"""max_pool2d and avg_pool2d (square kernel, stride, padding; max pads with -inf, average
with zeros and counts the padding or not), the gradient of max
going to the first maximum at ties, as torch (bugs, and the other valid conventions: the
last, an even split, in tests/operator_corpus/pooling.py).

Both backwards share one scatter: each window hands its gradient to its taps, and a
position covered by several windows (stride < kernel) accumulates them.
Samples: inputs on a coarse grid (ties in most windows), stride < kernel, padding 1,
near-ties 1e-3 apart, batch 1 with one channel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.ops.numpy_operator import In, Operator, grid, normal, single


def pool_params(kernel=2, stride=2, padding=0, **extra):
    return {"kernel": kernel, "stride": stride, "padding": padding, **extra}


def windows(xp, kernel, stride):
    """(N, C, OH, OW, kernel * kernel): the taps of every window, row-major."""
    w = sliding_window_view(xp, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    return w.reshape(w.shape[:4] + (kernel * kernel,))


def pad(x, padding, value):
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=value)


class Pool2d(Operator):
    """What max and average pooling share: windows over a padded input, and the scatter."""

    def scatter(self, per_tap, x, kernel, stride, padding):
        """Sum each window's per-tap gradient (N, C, OH, OW, k*k) into the input positions."""
        n, c, oh, ow, _ = per_tap.shape
        dxp = np.zeros((n, c, x.shape[2] + 2 * padding, x.shape[3] + 2 * padding), dtype=per_tap.dtype)
        for t in range(kernel * kernel):
            a, b = divmod(t, kernel)
            self.add(dxp, (slice(None), slice(None), slice(a, a + stride * (oh - 1) + 1, stride),
                           slice(b, b + stride * (ow - 1) + 1, stride)), per_tap[..., t])
        return self.crop(dxp, x, padding)

    def add(self, target, where, values):
        target[where] += values  # a basic slice: no position twice within one tap

    def crop(self, dxp, x, padding):
        return dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]

    def vjp(self, inputs, cotangents, kernel=2, stride=2, padding=0, **options):
        (x,), g = inputs, single(cotangents)
        weights = self.tap_weights(x, kernel, stride, padding, **options)
        return (self.scatter(weights * g[..., None], x, kernel, stride, padding),)

    def jvp(self, inputs, tangents, kernel=2, stride=2, padding=0, **options):
        """Pooling is piecewise linear: the tangent's windows weighted as the VJP weights the taps."""
        (x,), (t,) = inputs, tangents
        weights = self.tap_weights(x, kernel, stride, padding, **options)
        return ((weights * windows(pad(t, padding, 0), kernel, stride)).sum(axis=-1),)


class MaxPool2d(Pool2d, correct=True):
    """max_pool2d; the gradient goes to the first maximum of each window (torch)."""

    name = "max_pool2d"
    inputs = (In((1, 2, 5, 5), ties=True),)
    params = pool_params(kernel=3, stride=2, padding=1)

    def forward(self, x, kernel=2, stride=2, padding=0):
        return windows(pad(x, padding, -np.inf), kernel, stride).max(axis=-1)

    def tap_weights(self, x, kernel=2, stride=2, padding=0):
        w = windows(pad(x, padding, -np.inf), kernel, stride)
        return self.choose(w, w.max(axis=-1, keepdims=True))

    def choose(self, w, top):
        """Weights over each window's taps summing to 1 on its maxima: here the first one."""
        first = np.zeros(w.shape, dtype=w.dtype)
        np.put_along_axis(first, w.argmax(axis=-1)[..., None], 1, axis=-1)
        return first

    def samples(self, rng, dtype):
        def case(shape, label, x=None, **params):
            return (grid(rng, shape, dtype) if x is None else x,), pool_params(**params), label

        near = (np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4) % 3 * 1e-3).astype(dtype)
        return [
            case((2, 2, 4, 4), "ties, kernel 2 stride 2"),
            case((1, 2, 5, 5), "ties, kernel 3 stride 1: overlapping windows", kernel=3, stride=1),
            case((1, 1, 5, 6), "ties, kernel 3 stride 2 padding 1", kernel=3, stride=2, padding=1),
            case((1, 1, 4, 4), "no ties, kernel 2 stride 1", x=normal(rng, (1, 1, 4, 4), dtype), stride=1),
            case((1, 1, 4, 4), "near-ties 1e-3 apart", x=near, kernel=2, stride=2),
            case((1, 1, 2, 2), "a single window"),
        ]


class AvgPool2d(Pool2d, correct=True):
    """avg_pool2d; with count_include_pad=False the divisor counts only real elements."""

    name = "avg_pool2d"
    inputs = (In((1, 2, 5, 5)),)
    params = pool_params(kernel=3, stride=2, padding=1, count_include_pad=False)

    def divisor(self, x, kernel, stride, padding, count_include_pad):
        if count_include_pad:
            return float(kernel * kernel)
        return windows(pad(np.ones_like(x), padding, 0), kernel, stride).sum(axis=-1)

    def forward(self, x, kernel=2, stride=2, padding=0, count_include_pad=True):
        total = windows(pad(x, padding, 0), kernel, stride).sum(axis=-1)
        return total / self.divisor(x, kernel, stride, padding, count_include_pad)

    def tap_weights(self, x, kernel=2, stride=2, padding=0, count_include_pad=True):
        div = self.divisor(x, kernel, stride, padding, count_include_pad)
        shape = windows(pad(x, padding, 0), kernel, stride).shape
        return np.broadcast_to(np.asarray(1 / np.asarray(div, dtype=x.dtype))[..., None], shape)

    def samples(self, rng, dtype):
        def case(shape, label, **params):
            return (normal(rng, shape, dtype),), pool_params(**params), label

        return [
            case((2, 2, 4, 4), "kernel 2 stride 2", count_include_pad=True),
            case((1, 2, 5, 5), "kernel 3 stride 1: overlapping windows", kernel=3, stride=1, count_include_pad=True),
            case((1, 1, 5, 6), "padding 1, count_include_pad=False", kernel=3, stride=2, padding=1,
                 count_include_pad=False),
            case((1, 1, 5, 5), "padding 1, count_include_pad=True", kernel=3, stride=2, padding=1,
                 count_include_pad=True),
            case((1, 1, 2, 2), "a single window", count_include_pad=False),
        ]
