"""max_pool2d and avg_pool2d (square kernel, stride, padding; max pads with -inf, average
with zeros and counts the padding or not), with their realistic backward bugs and the
valid conventions at ties (the first maximum, as torch; the last; an even split).

Both backwards share one scatter: each window hands its gradient to its taps, and a
position covered by several windows (stride < kernel) accumulates them.
Samples: inputs on a coarse grid (ties in most windows), stride < kernel, padding 1,
near-ties 1e-3 apart, batch 1 with one channel.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_pooling.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_pooling import AvgPool2d, MaxPool2d

# --- bugs ------------------------------------------------------------------------------------


class MaxPool2dEveryTieGetsGradient(MaxPool2d):
    """max_pool2d mask = (window == max): every tied element gets the full gradient (k times the mass)."""

    source = "https://github.com/Theano/Theano/issues/5248; https://github.com/tensorflow/tensorflow/issues/4886"

    def choose(self, w, top):
        return (w == top).astype(w.dtype)


class MaxPool2dLooseMask(MaxPool2d):
    """max_pool2d mask from np.isclose(window, max, atol=1e-2): near-maxima get gradient too."""

    source = "https://github.com/mni-ml/framework/pull/22 (review comment)"

    def choose(self, w, top):
        return np.isclose(w, top, atol=1e-2).astype(w.dtype)


class MaxPool2dAssignedNotAccumulated(MaxPool2d):
    """max_pool2d writes dx[window] = g instead of +=: with stride < kernel an element that is the
    maximum of several windows keeps one window's gradient."""

    source = "https://github.com/FluxML/Flux.jl/issues/1197; https://github.com/devitocodes/joey/pull/5"

    def add(self, target, where, values):
        target[where] = np.where(values != 0, values, target[where])


class MaxPool2dCropFromCorner(MaxPool2d):
    """max_pool2d argmax taken in padded coordinates, written to the unpadded input from its corner."""

    source = "https://github.com/tensorflow/tensorflow/issues/10216; https://github.com/FluxML/NNlib.jl/issues/133"

    def crop(self, dxp, x, padding):
        return dxp[:, :, :x.shape[2], :x.shape[3]]


class AvgPool2dDivisorCountsPadding(AvgPool2d):
    """avg_pool2d with count_include_pad=False: the forward divides by the real count, the
    backward by kernel * kernel."""

    source = "https://github.com/tinygrad/tinygrad/pull/605"

    def tap_weights(self, x, kernel=2, stride=2, padding=0, count_include_pad=True):
        return super().tap_weights(x, kernel, stride, padding, count_include_pad=True)


class AvgPool2dAssignedNotAccumulated(AvgPool2d):
    """avg_pool2d writes dx[window] = g / k^2 instead of +=: overlapping windows overwrite each other."""

    source = "https://github.com/FluxML/Flux.jl/issues/1197 (family)"

    def add(self, target, where, values):
        target[where] = values


# --- correct variants ------------------------------------------------------------------------


class MaxPool2dSplitTies(MaxPool2d):
    """max_pool2d splitting the gradient evenly among tied maxima (as amax over unfolded windows):
    a valid subgradient."""

    def choose(self, w, top):
        tied = (w == top).astype(w.dtype)
        return tied / tied.sum(axis=-1, keepdims=True)


class MaxPool2dLastTie(MaxPool2d):
    """max_pool2d sending the gradient to the last tied maximum: a valid subgradient."""

    def choose(self, w, top):
        last = np.zeros(w.shape, dtype=w.dtype)
        index = w.shape[-1] - 1 - np.flip(w, axis=-1).argmax(axis=-1)
        np.put_along_axis(last, index[..., None], 1, axis=-1)
        return last
