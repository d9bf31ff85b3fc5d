"""Scaled dot-product attention with an optional causal mask (top-left aligned, as
torch.nn.functional.scaled_dot_product_attention: query i sees keys j <= i), with its
realistic backward bugs and a correct variant that masks by multiplying and renormalising.

Samples: seq_q == seq_k, seq_q != seq_k (both ways), a single query, no mask, an
explicit scale, batch 1.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_attention.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_attention import Attention, future, swap
from harness.ops.numpy_operator import single
from harness.ops.numpy_softmax import softmax

# --- bugs ------------------------------------------------------------------------------------


class AttentionMaskAfterSoftmax(Attention):
    """causal mask applied after the softmax by zeroing probabilities, without renormalising
    (forward and backward consistent): rows no longer sum to 1."""

    source = "https://github.com/huggingface/pytorch-image-models/pull/2236"

    def probabilities(self, q, k, causal, scale):
        p = softmax(self.scores(q, k, False, scale), -1)
        return np.where(future(q.shape[-2], k.shape[-2]), 0, p) if causal else p

    def score_gradient(self, q, k, v, g, causal, scale):
        u = softmax(self.scores(q, k, False, scale), -1)
        du = g @ swap(v)
        if causal:
            du = np.where(future(q.shape[-2], k.shape[-2]), 0, du)
        return u * (du - (du * u).sum(axis=-1, keepdims=True)), self.probabilities(q, k, causal, scale)

    def jvp(self, inputs, tangents, causal=True, scale=None):
        q, k, v = inputs
        dq, dk, dv = tangents
        u = softmax(self.scores(q, k, False, scale), -1)
        ds = (dq @ swap(k) + q @ swap(dk)) * self.scale_of(q, scale)
        dp = u * (ds - (u * ds).sum(axis=-1, keepdims=True))
        if causal:
            dp = np.where(future(q.shape[-2], k.shape[-2]), 0, dp)
        return (dp @ v + self.probabilities(q, k, causal, scale) @ dv,)


class AttentionScaleMissingInBackward(Attention):
    """attention applies 1/sqrt(d) in the forward but not in the dQ and dK of the backward."""

    source = "classic; the memo's #55"

    def vjp(self, inputs, cotangents, causal=True, scale=None):
        q, k, v = inputs
        ds, p = self.score_gradient(q, k, v, single(cotangents), causal, scale)
        return ds @ k, swap(ds) @ q, swap(p) @ single(cotangents)


class AttentionBackwardUnmasked(Attention):
    """attention's recompute-style backward rebuilds P without the causal mask."""

    source = "https://github.com/Dao-AILab/flash-attention/issues/1778"

    def score_gradient(self, q, k, v, g, causal, scale):
        return super().score_gradient(q, k, v, g, False, scale)

    def vjp(self, inputs, cotangents, causal=True, scale=None):
        q, k, v = inputs
        g = single(cotangents)
        ds, _ = self.score_gradient(q, k, v, g, causal, scale)
        c = self.scale_of(q, scale)
        return ds @ k * c, swap(ds) @ q * c, swap(self.probabilities(q, k, causal, scale)) @ g


class AttentionScalePromotesFloat32(Attention):
    """attention backward scales by 1 / np.sqrt(d), a float64 scalar: under NumPy 2's promotion
    rules dQ and dK come back float64 for float32 inputs."""

    source = "NEP 50 (numpy.org/neps/nep-0050-scalar-promotion.html)"

    def vjp(self, inputs, cotangents, causal=True, scale=None):
        q, k, v = inputs
        g = single(cotangents)
        ds, p = self.score_gradient(q, k, v, g, causal, scale)
        c = 1 / np.sqrt(q.shape[-1]) if scale is None else np.float64(scale)
        return ds @ k * c, swap(ds) @ q * c, swap(p) @ g


# --- correct variants ------------------------------------------------------------------------


class AttentionMaskMultiplyRenormalise(Attention):
    """attention masked by multiplying the softmax by the mask and renormalising: equal to
    masking the scores with -inf (https://github.com/abisee/pointer-generator/issues/88)."""

    def probabilities(self, q, k, causal, scale):
        u = softmax(self.scores(q, k, False, scale), -1)
        if not causal:
            return u
        w = np.where(future(q.shape[-2], k.shape[-2]), 0, u)
        return w / w.sum(axis=-1, keepdims=True)

    def score_gradient(self, q, k, v, g, causal, scale):
        if not causal:
            return super().score_gradient(q, k, v, g, causal, scale)
        u = softmax(self.scores(q, k, False, scale), -1)
        keep = ~future(q.shape[-2], k.shape[-2])
        w = u * keep
        total = w.sum(axis=-1, keepdims=True)
        p = w / total
        dp = g @ swap(v)
        du = (dp - (dp * p).sum(axis=-1, keepdims=True)) / total * keep
        return u * (du - (du * u).sum(axis=-1, keepdims=True)), p
