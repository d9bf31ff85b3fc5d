"""layer_norm and batch_norm (training statistics), with their realistic backward bugs
and correct variants (the textbook batch-norm backward with its exactly-zero terms dropped;
a large offset).

Samples use rank-3 inputs, gamma != 1, H = 1, a single row, small batches (an O(1/m)
error shows) and offsets.
"""

from __future__ import annotations

import numpy as np

from tests.operator_corpus.operator import In, Operator, normal, single


def lead_axes(x, axis_kept):
    return tuple(i for i in range(x.ndim) if i != axis_kept % x.ndim)


class LayerNorm(Operator, correct=True):
    """layer_norm over the last axis with gamma and beta, biased variance (torch)."""

    name = "layer_norm"
    inputs = (In((3, 5)), In((5,)), In((5,)))
    params = {"eps": 1e-5}
    ddof = 0  # the variance's divisor is H - ddof

    def normalized(self, x, eps):
        xc = x - x.mean(axis=-1, keepdims=True)
        rstd = 1 / np.sqrt((xc * xc).sum(axis=-1, keepdims=True) / (x.shape[-1] - self.ddof) + eps)
        return xc * rstd, rstd

    def forward(self, x, gamma, beta, eps=1e-5):
        return self.normalized(x, eps)[0] * gamma + beta

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, _ = inputs
        g = single(cotangents)
        xhat, rstd = self.normalized(x, eps)
        gh = g * gamma
        n = x.shape[-1] - self.ddof
        dx = rstd * (gh - gh.mean(axis=-1, keepdims=True) - xhat * (gh * xhat).sum(axis=-1, keepdims=True) / n)
        lead = tuple(range(x.ndim - 1))
        return dx, (g * xhat).sum(axis=lead), g.sum(axis=lead)

    def jvp(self, inputs, tangents, eps=1e-5):
        x, gamma, _ = inputs
        dx, dgamma, dbeta = tangents
        xhat, rstd = self.normalized(x, eps)
        dxc = dx - dx.mean(axis=-1, keepdims=True)
        n = x.shape[-1] - self.ddof
        dxhat = rstd * (dxc - xhat * (xhat * dxc).sum(axis=-1, keepdims=True) / n)
        return (dxhat * gamma + xhat * dgamma + dbeta,)

    def samples(self, rng, dtype):
        def case(shape, label, offset=0.0, scale=1.0):
            h = shape[-1]
            x = normal(rng, shape, dtype, scale, offset)
            return (x, normal(rng, (h,), dtype, 0.5, 1.0), normal(rng, (h,), dtype)), {"eps": 1e-5}, label

        return [case((3, 5), "3x5"), case((2, 3, 4), "rank 3 (2, 3, 4)"), case((4, 1), "H = 1: output is beta"),
                case((1, 6), "a single row"), case((3, 4), "offset 10, scale 3", offset=10.0, scale=3.0)]


class BatchNorm(Operator, correct=True):
    """batch_norm in training mode: batch statistics over every axis but 1 (channels),
    biased variance, gamma and beta per channel; the textbook backward with every term."""

    name = "batch_norm"
    inputs = (In((4, 3)), In((3,)), In((3,)))
    params = {"eps": 1e-5}

    @staticmethod
    def per_channel(v, x):
        return v.reshape((1, -1) + (1,) * (x.ndim - 2))

    def normalized(self, x, eps):
        axes = lead_axes(x, 1)
        xc = x - x.mean(axis=axes, keepdims=True)
        rstd = 1 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
        return xc, rstd, axes

    def forward(self, x, gamma, beta, eps=1e-5):
        xc, rstd, _ = self.normalized(x, eps)
        return xc * rstd * self.per_channel(gamma, x) + self.per_channel(beta, x)

    def vjp(self, inputs, cotangents, eps=1e-5):
        x, gamma, _ = inputs
        g = single(cotangents)
        xc, rstd, axes = self.normalized(x, eps)
        m = x.size // x.shape[1]
        gh = g * self.per_channel(gamma, x)
        dvar = (gh * xc).sum(axis=axes, keepdims=True) * -0.5 * rstd**3
        dmean = (-gh * rstd).sum(axis=axes, keepdims=True) + dvar * (-2 * xc).mean(axis=axes, keepdims=True)
        dx = gh * rstd + dvar * 2 * xc / self.variance_count(m) + dmean / m
        return dx, (g * xc * rstd).sum(axis=axes), g.sum(axis=axes)

    def variance_count(self, m):
        """The number the batch variance divides by: m (biased, as the forward)."""
        return m

    def jvp(self, inputs, tangents, eps=1e-5):
        x, gamma, _ = inputs
        dx, dgamma, dbeta = tangents
        xc, rstd, axes = self.normalized(x, eps)
        xhat = xc * rstd
        dxc = dx - dx.mean(axis=axes, keepdims=True)
        dxhat = rstd * (dxc - xhat * (xhat * dxc).mean(axis=axes, keepdims=True))
        return (dxhat * self.per_channel(gamma, x) + xhat * self.per_channel(dgamma, x) + self.per_channel(dbeta, x),)

    def samples(self, rng, dtype):
        def case(shape, label, offset=0.0):
            c = shape[1]
            x = normal(rng, shape, dtype, 2.0, offset)
            return (x, normal(rng, (c,), dtype, 0.5, 1.0), normal(rng, (c,), dtype)), {"eps": 1e-5}, label

        return [case((4, 3), "(4, 3), gamma != 1"), case((2, 3, 5), "(2, 3, 5): statistics over N and L"),
                case((2, 2), "a batch of 2"), case((3, 1, 4), "one channel"), case((5, 2), "offset 100", 100.0)]


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
