"""layer_norm and batch_norm (training statistics), with their realistic backward bugs
and correct variants (the textbook batch-norm backward with its exactly-zero terms dropped;
a large offset).

Samples use rank-3 inputs, gamma != 1, H = 1, a single row, small batches (an O(1/m)
error shows) and offsets.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_normalization.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_normalization import BatchNorm, LayerNorm, lead_axes
from harness.ops.numpy_operator import normal, single

# --- bugs ------------------------------------------------------------------------------------


class LayerNormStatisticsConstant(LayerNorm):
    """layer_norm backward g * gamma / sigma: mean and variance treated as constants."""

    source = "https://github.com/pytorch/functorch/pull/807 (saved-statistics hazard)"

    def vjp(self, inputs, cotangents, eps=1e-5):
        _, dgamma, dbeta = super().vjp(inputs, cotangents, eps)
        x, gamma, _ = inputs
        return single(cotangents) * gamma * self.normalized(x, eps)[1], dgamma, dbeta


class LayerNormGammaBetaSwapped(LayerNorm):
    """layer_norm returns the gradients of gamma and beta in each other's places."""

    source = "https://github.com/Oneflow-Inc/oneflow/pull/6149"

    def vjp(self, inputs, cotangents, eps=1e-5):
        dx, dgamma, dbeta = super().vjp(inputs, cotangents, eps)
        return dx, dbeta, dgamma


class LayerNormUnbiasedVariance(LayerNorm):
    """layer_norm with the unbiased variance (x.std() default) in forward and backward alike."""

    source = "https://github.com/harvardnlp/annotated-transformer/pull/119"
    ddof = 1


class LayerNormAssumes2D(LayerNorm):
    """layer_norm sums gamma's and beta's gradients over axis 0 only: wrong for (B, S, H)."""

    source = "https://github.com/flagos-ai/FlagGems/issues/5392"

    def vjp(self, inputs, cotangents, eps=1e-5):
        dx, _, _ = super().vjp(inputs, cotangents, eps)
        g = single(cotangents)
        return dx, (g * self.normalized(inputs[0], eps)[0]).sum(axis=0), g.sum(axis=0)


class LayerNormJvpStatisticsConstant(LayerNorm):
    """layer_norm's forward-mode rule (dx * gamma) / sigma: mean and variance held constant in the JVP only."""

    source = "https://github.com/pytorch/functorch/pull/807 (saved statistics), in forward mode"

    def jvp(self, inputs, tangents, eps=1e-5):
        x, gamma, _ = inputs
        dx, dgamma, dbeta = tangents
        xhat, rstd = self.normalized(x, eps)
        return (dx * rstd * gamma + xhat * dgamma + dbeta,)


class LayerNormFloat32Statistics(LayerNorm):
    """layer_norm computes mean and variance in float32 for float64 inputs: float32-sized errors."""

    source = "mixed-precision statistics; float64 results carrying float32 rounding"

    def normalized(self, x, eps):
        xhat, rstd = super().normalized(x.astype(np.float32), eps)
        return xhat.astype(x.dtype), rstd.astype(x.dtype)


class BatchNormStatisticsConstant(BatchNorm):
    """batch_norm (training) backward g * gamma / sigma: batch mean and variance treated as constants."""

    source = "https://github.com/facebookresearch/CrypTen/pull/143"

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, _ = inputs
        _, dgamma, dbeta = super().vjp(inputs, cotangents, eps)
        return single(cotangents) * self.per_channel(gamma, x) * self.normalized(x, eps)[1], dgamma, dbeta


class BatchNormInputGradWithoutGamma(BatchNorm):
    """batch_norm: the input gradient uses the cotangent unscaled by gamma (right only for gamma = 1)."""

    source = "https://github.com/denizyuret/Knet.jl/issues/288"

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, beta = inputs
        dx, _, _ = super().vjp((x, np.ones_like(gamma), beta), cotangents, eps)
        _, dgamma, dbeta = super().vjp(inputs, cotangents, eps)
        return dx, dgamma, dbeta


class BatchNormBackwardUnbiasedVariance(BatchNorm):
    """batch_norm backward divides the variance term by m - 1 while the forward uses the biased
    variance: an O(1/m) error, hidden by large batches."""

    source = "https://github.com/apache/mxnet/issues/1053; https://github.com/pytorch/pytorch/issues/60528"

    def variance_count(self, m):
        return m - 1


class BatchNormRunningStatistics(BatchNorm):
    """batch_norm in training mode normalises with running statistics it updates on every call."""

    source = "https://github.com/pytorch/pytorch/issues/60528 (family)"
    momentum = 0.1

    def running(self, x):
        """This layer's running mean and variance (one pair per channel count, as a model holds)."""
        if not hasattr(self, "statistics"):
            self.statistics = {}
        c = x.shape[1]
        return self.statistics.setdefault(c, [np.zeros(c, x.dtype), np.ones(c, x.dtype)])

    def forward(self, x, gamma, beta, eps=1e-5):
        axes = lead_axes(x, 1)
        stats = self.running(x)
        stats[0] = (1 - self.momentum) * stats[0] + self.momentum * x.mean(axis=axes)
        stats[1] = (1 - self.momentum) * stats[1] + self.momentum * x.var(axis=axes, ddof=1)
        mean, var = (self.per_channel(s, x) for s in stats)
        return (x - mean) / np.sqrt(var + eps) * self.per_channel(gamma, x) + self.per_channel(beta, x)

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, _ = inputs
        g = single(cotangents)
        mean, var = (self.per_channel(s, x) for s in self.running(x))
        rstd, axes = 1 / np.sqrt(var + eps), lead_axes(x, 1)
        return g * self.per_channel(gamma, x) * rstd, (g * (x - mean) * rstd).sum(axis=axes), g.sum(axis=axes)


class BatchNormCentresInPlace(BatchNorm):
    """batch_norm centres its input in place (x -= mean) to save memory: the caller's x changes
    (and, batch norm being shift-invariant, every value computed stays right)."""

    source = "in-place saved tensors: https://github.com/pytorch/pytorch/issues/31938 (family)"

    def normalized(self, x, eps):
        axes = lead_axes(x, 1)
        x -= x.mean(axis=axes, keepdims=True)
        return x, 1 / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps), axes


# --- correct variants ------------------------------------------------------------------------


class BatchNormCompact(BatchNorm):
    """batch_norm backward with the exactly-zero terms (sum of x - mean) dropped:
    rstd/m * (m gh - sum(gh) - xhat sum(gh xhat)); correct (darknet PR 29, caffe #3878)."""

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, _ = inputs
        g = single(cotangents)
        xc, rstd, axes = self.normalized(x, eps)
        xhat, m = xc * rstd, x.size // x.shape[1]
        gh = g * self.per_channel(gamma, x)
        s1, s2 = gh.sum(axis=axes, keepdims=True), (gh * xhat).sum(axis=axes, keepdims=True)
        return rstd / m * (m * gh - s1 - xhat * s2), (g * xhat).sum(axis=axes), g.sum(axis=axes)


class LayerNormLargeOffset(LayerNorm):
    """layer_norm of x = 1e3 + N(0, 1): correct two-pass statistics; a tolerance must follow the
    inputs' own rounding (eps * 1e3), not eps * |output|."""

    def samples(self, rng, dtype):
        def case(shape, label):
            h = shape[-1]
            x = normal(rng, shape, dtype, 1.0, 1e3)
            return (x, normal(rng, (h,), dtype, 0.5, 1.0), normal(rng, (h,), dtype)), {"eps": 1e-5}, label

        return [case((3, 6), "offset 1e3"), case((2, 2, 4), "offset 1e3, rank 3")]
