"""Scaled dot-product attention with an optional causal mask (top-left aligned, as
torch.nn.functional.scaled_dot_product_attention: query i sees keys j <= i), with its
realistic backward bugs and a correct variant that masks by multiplying and renormalising.

Samples: seq_q == seq_k, seq_q != seq_k (both ways), a single query, no mask, an
explicit scale, batch 1.
"""

from __future__ import annotations

import math

import numpy as np

from tests.operator_corpus.operator import In, Operator, normal, single
from tests.operator_corpus.softmax import softmax


def swap(a):
    return np.swapaxes(a, -1, -2)


def future(tq, tk):
    """Where query i may not look: keys j > i."""
    return np.triu(np.ones((tq, tk), dtype=bool), k=1)


class Attention(Operator, correct=True):
    """softmax(q k^T * scale, masked) v, q (B, Tq, D), k (B, Tk, D), v (B, Tk, Dv)."""

    name = "attention"
    inputs = (In((2, 3, 4)), In((2, 3, 4)), In((2, 3, 2)))
    params = {"causal": True, "scale": None}

    @staticmethod
    def scale_of(q, scale):
        return 1 / math.sqrt(q.shape[-1]) if scale is None else scale

    def scores(self, q, k, causal, scale):
        s = (q @ swap(k)) * self.scale_of(q, scale)
        return np.where(future(q.shape[-2], k.shape[-2]), -np.inf, s) if causal else s

    def probabilities(self, q, k, causal, scale):
        return softmax(self.scores(q, k, causal, scale), -1)

    def forward(self, q, k, v, causal=True, scale=None):
        return self.probabilities(q, k, causal, scale) @ v

    def score_gradient(self, q, k, v, g, causal, scale):
        """dL/dS from the output cotangent, through P @ v and the row softmax."""
        p = self.probabilities(q, k, causal, scale)
        dp = g @ swap(v)
        return p * (dp - (dp * p).sum(axis=-1, keepdims=True)), p

    def vjp(self, inputs, cotangents, causal=True, scale=None):
        q, k, v = inputs
        g = single(cotangents)
        ds, p = self.score_gradient(q, k, v, g, causal, scale)
        c = self.scale_of(q, scale)
        return ds @ k * c, swap(ds) @ q * c, swap(p) @ g

    def jvp(self, inputs, tangents, causal=True, scale=None):
        q, k, v = inputs
        dq, dk, dv = tangents
        p = self.probabilities(q, k, causal, scale)
        ds = (dq @ swap(k) + q @ swap(dk)) * self.scale_of(q, scale)
        if causal:
            ds = np.where(future(q.shape[-2], k.shape[-2]), 0, ds)
        dp = p * (ds - (p * ds).sum(axis=-1, keepdims=True))
        return (dp @ v + p @ dv,)

    def samples(self, rng, dtype):
        def case(b, tq, tk, d, dv, label, **params):
            qkv = (normal(rng, (b, tq, d), dtype), normal(rng, (b, tk, d), dtype), normal(rng, (b, tk, dv), dtype))
            return qkv, {"causal": True, "scale": None, **params}, label

        return [
            case(2, 3, 3, 4, 2, "causal, seq 3"),
            case(1, 2, 4, 3, 3, "causal, 2 queries over 4 keys"),
            case(1, 4, 2, 2, 3, "causal, 4 queries over 2 keys"),
            case(2, 3, 3, 4, 2, "no mask", causal=False),
            case(1, 1, 3, 2, 1, "a single query, width-1 values"),
            case(1, 3, 3, 2, 2, "explicit scale 2.0", scale=2.0),
        ]


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
