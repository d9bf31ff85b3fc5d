"""Dense layers: linear (y = x W^T + b, any leading axes), batched matmul with a
broadcast weight, embedding lookup -- with their realistic backward bugs.

Samples use non-square, non-symmetric weights (a transposed gradient then has the wrong
shape) and also square ones (then it has the right shape and wrong values), rank-3
inputs, a single sample, width 1, and repeated embedding indices.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_dense.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_dense import Embedding, Linear, Matmul
from harness.ops.numpy_operator import single

# --- bugs ------------------------------------------------------------------------------------


class LinearBiasNotSummed(Linear):
    """linear bias gradient db = g: not summed over the batch."""

    source = "https://github.com/mlpack/mlpack/pull/3679"

    def vjp(self, inputs, cotangents):
        dx, dW, _ = super().vjp(inputs, cotangents)
        return dx, dW, single(cotangents)


class LinearBiasSummedOverFirstAxisOnly(Linear):
    """linear bias gradient g.sum(0): right for (N, in) inputs, wrong for rank-3 (B, S, in)."""

    source = "https://github.com/ooples/AiDotNet.Tensors/issues/234"

    def vjp(self, inputs, cotangents):
        dx, dW, _ = super().vjp(inputs, cotangents)
        return dx, dW, single(cotangents).sum(axis=0)


class LinearWeightGradTransposed(Linear):
    """linear weight gradient x^T g where y = x W^T needs g^T x: W's transpose."""

    source = "classic; shape-silent whenever W is square"

    def vjp(self, inputs, cotangents):
        x, W, _ = inputs
        dx, _, db = super().vjp(inputs, cotangents)
        g = single(cotangents)
        return dx, x.reshape(-1, W.shape[1]).T @ g.reshape(-1, W.shape[0]), db


class LinearInputGradWrongTranspose(Linear):
    """linear input gradient g W^T where y = x W^T needs g W (same value only for symmetric W)."""

    source = "classic; raises for non-square W, silently wrong for square"

    def vjp(self, inputs, cotangents):
        _, W, _ = inputs
        _, dW, db = super().vjp(inputs, cotangents)
        return single(cotangents) @ W.T, dW, db


class LinearGradientsAccumulate(Linear):
    """linear keeps its gradients in buffers it adds to and never zeroes: each call adds the last."""

    source = "https://github.com/karpathy/micrograd/issues/53"

    def vjp(self, inputs, cotangents):
        grads = super().vjp(inputs, cotangents)
        if not hasattr(self, "buffers"):
            self.buffers = {}  # one set of .grad buffers per layer shape, as a model would hold
        buffers = self.buffers.setdefault(tuple(x.shape for x in inputs), [np.zeros_like(g) for g in grads])
        for buffer, g in zip(buffers, grads):
            buffer += g
        return tuple(b.copy() for b in buffers)


class LinearFloat32Gradients(Linear):
    """linear backward runs in float32 'for speed' and returns float32 gradients for float64 inputs."""

    source = "float32 'use double': https://github.com/pytorch/pytorch/issues/5351"

    def vjp(self, inputs, cotangents):
        low = tuple(np.asarray(x, np.float32) for x in inputs)
        return super().vjp(low, np.asarray(single(cotangents), np.float32))


class MatmulWeightNotSummedOverBatch(Matmul):
    """batched matmul with a broadcast weight: dW returned per batch element (B, k, m), not summed."""

    source = "https://github.com/pytorch/pytorch/issues/1787"

    def vjp(self, inputs, cotangents):
        a, _ = inputs
        da, _ = super().vjp(inputs, cotangents)
        return da, np.swapaxes(a, -1, -2) @ single(cotangents)


class EmbeddingBufferedAdd(Embedding):
    """embedding gradient dW[idx] += g: NumPy fancy indexing is buffered, so a repeated index counts once."""

    source = "https://stackoverflow.com/questions/45473896/np-add-at-indexing-with-array"

    def scatter(self, dW, indices, g):
        dW[indices] += g


class EmbeddingAssigned(Embedding):
    """embedding gradient dW[idx] = g: assignment, the last repeated index wins."""

    source = "https://github.com/pytorch/pytorch/issues/146299"

    def scatter(self, dW, indices, g):
        dW[indices] = g


class EmbeddingIndicesNotSaved(Embedding):
    """embedding backward never receives the indices: every gradient row lands in row 0."""

    source = "https://github.com/tsotchke/eshkol/pull/392"

    def scatter(self, dW, indices, g):
        np.add.at(dW, np.zeros_like(indices), g)
