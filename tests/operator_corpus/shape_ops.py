"""Reductions (sum, mean, max) over several axes and shape operators (permute,
concatenate), with their realistic backward bugs and the valid conventions of max at
ties. ``axis`` may arrive as a list (parameters stored as JSON in a case file): every
operator here takes a list, a tuple, an int or None.

Samples: non-adjacent axes, a square input (a transposed gradient keeps its shape),
non-involutive 3-D permutations, unequal concatenation sizes along a non-leading axis,
inputs on a grid (ties), a full reduction to a 0-d array.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_shape_ops.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import single
from harness.ops.numpy_shape_ops import Amax, Concatenate, Mean, Permute, Sum, axes_of, restore

# --- bugs ------------------------------------------------------------------------------------


class SumBroadcastWithoutExpand(Sum):
    """sum backward np.broadcast_to(g, x.shape) without restoring the reduced axes: numpy aligns
    trailing axes, so a square input gets the transposed gradient (others raise)."""

    source = "https://github.com/harvard-edge/cs249r_book/pull/1867"

    def vjp(self, inputs, cotangents, axis=None):
        return (np.broadcast_to(single(cotangents), inputs[0].shape).copy(),)


class MeanDividesByOutputSize(Mean):
    """mean backward divides by the output's size instead of the number of elements averaged."""

    source = "https://github.com/pocketpy/cTensor/pull/24"

    def vjp(self, inputs, cotangents, axis=None):
        x, g = inputs[0], single(cotangents)
        return (restore(g, x, axis) / np.size(g),)


class AmaxEveryTieGetsGradient(Amax):
    """max backward mask = (x == max): every tied maximum gets the full gradient."""

    source = "https://github.com/tensorflow/tensorflow/issues/51682; https://github.com/facebookresearch/CrypTen/pull/90"

    def weights(self, x, axis):
        return (x == x.max(axis=axes_of(axis, x.ndim), keepdims=True)).astype(x.dtype)


class PermuteBackwardSamePermutation(Permute):
    """permute backward applies perm again instead of its inverse argsort(perm)."""

    source = "the memo's #60 (non-involutive permutations)"

    def vjp(self, inputs, cotangents, perm=None):
        return (np.transpose(single(cotangents), perm),)


class ConcatenateSplitAtSizes(Concatenate):
    """concatenate backward np.split(g, sizes): np.split wants offsets, so the pieces come out wrong."""

    source = "https://github.com/tenstorrent/tt-metal/issues/11110 (family)"

    def vjp(self, inputs, cotangents, axis=0):
        sizes = [x.shape[axis] for x in inputs]
        return tuple(np.split(single(cotangents), sizes[:-1], axis=axis))


class ConcatenateSplitAlongAxis0(Concatenate):
    """concatenate backward splits along axis 0 (np.split's default), not the concatenation axis."""

    source = "https://github.com/tenstorrent/tt-metal/issues/11110"

    def vjp(self, inputs, cotangents, axis=0):
        sizes = [x.shape[axis] for x in inputs]
        return tuple(np.split(single(cotangents), np.cumsum(sizes)[:-1]))


# --- correct variants ------------------------------------------------------------------------


class AmaxFirstTie(Amax):
    """max sending the gradient to the first tied maximum (torch.max(x, dim)): a valid subgradient."""

    def weights(self, x, axis):
        axes = axes_of(axis, x.ndim)
        moved = np.moveaxis(x, axes, range(-len(axes), 0))
        flat = moved.reshape(moved.shape[: moved.ndim - len(axes)] + (-1,))
        first = np.zeros_like(flat)
        np.put_along_axis(first, flat.argmax(axis=-1)[..., None], 1, axis=-1)
        return np.moveaxis(first.reshape(moved.shape), range(-len(axes), 0), axes)


class AmaxLastTie(AmaxFirstTie):
    """max sending the gradient to the last tied maximum (sort's convention): a valid subgradient."""

    def weights(self, x, axis):
        axes = axes_of(axis, x.ndim)
        flipped = np.flip(x, axis=axes)
        return np.flip(super().weights(flipped, axis), axis=axes)
