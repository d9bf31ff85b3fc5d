"""Scaled dot-product attention with an optional causal mask (top-left aligned, as
torch.nn.functional.scaled_dot_product_attention: query i sees keys j <= i), (its bugs
are in tests/operator_corpus/attention.py).

Samples: seq_q == seq_k, seq_q != seq_k (both ways), a single query, no mask, an
explicit scale, batch 1.
"""

from __future__ import annotations

import math

import numpy as np

from harness.ops.numpy_operator import In, Operator, normal, single, widened
from harness.ops.numpy_softmax import softmax


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

    # The terms the backward and the JVP add up, in absolute value (what their rounding
    # scales with: ``harness.core.mapping``, ``vjp_terms``): the same computation on absolute
    # values. dS = p (dp - sum p dp) cancels to nearly 0 where a row's softmax saturates
    # (large scores: p one-hot), but its rounding is eps |dp| still, then multiplied by |k|
    # (or |q|): a gradient of 1e-11 off by 4e-15 in float64 is right. The function itself
    # hardly moves there, so the rounding sensitivity does not see it.
    def _score_terms(self, q, k, v, g, causal, scale):
        p = self.probabilities(q, k, causal, scale)
        dp = g @ swap(np.abs(v))  # (g: |cotangent| in float64)
        return p * (dp + (dp * p).sum(axis=-1, keepdims=True)), p

    def vjp_terms(self, inputs, cotangents, causal=True, scale=None):
        q, k, v = widened(inputs)
        g = np.abs(np.asarray(single(cotangents), np.float64))
        ds, p = self._score_terms(q, k, v, g, causal, scale)
        c = abs(self.scale_of(q, scale))
        return ds @ np.abs(k) * c, swap(ds) @ np.abs(q) * c, swap(p) @ g

    def jvp_terms(self, inputs, tangents, causal=True, scale=None):
        q, k, v = widened(inputs)
        dq, dk, dv = (np.abs(t) for t in widened(tangents))
        p = self.probabilities(q, k, causal, scale)
        ds = (dq @ swap(np.abs(k)) + np.abs(q) @ swap(dk)) * abs(self.scale_of(q, scale))
        if causal:
            ds = np.where(future(q.shape[-2], k.shape[-2]), 0, ds)
        dp = p * (ds + (p * ds).sum(axis=-1, keepdims=True))
        return (dp @ np.abs(v) + p @ dv,)

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
