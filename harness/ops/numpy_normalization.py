"""layer_norm and batch_norm (training statistics), (bugs and
correct variants in tests/operator_corpus/normalization.py).

Samples use rank-3 inputs, gamma != 1, H = 1, a single row, small batches (an O(1/m)
error shows) and offsets.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import In, Operator, normal, single, widened


def lead_axes(x, axis_kept):
    return tuple(i for i in range(x.ndim) if i != axis_kept % x.ndim)


# The terms a normalisation's backward and JVP add up, in absolute value (what their rounding
# scales with: ``harness.core.mapping``, ``vjp_terms``): the same computation on absolute
# values. With xhat = (x - mean) rstd, a gradient is rstd (gh - M(gh) - xhat M(gh xhat)) (M:
# the mean over the statistics' axes, gh = g gamma) and a tangent gamma rstd (dxc - xhat
# M(xhat dxc)), dxc = dx - M(dx): terms of size rstd |gh| and rstd |dxc| that cancel where the
# output hardly depends on x (width 1: y = beta; two samples: xhat = +-1), with rstd up to
# 1/sqrt(eps) = 316. xhat's own rounding (x - mean: eps (|x| + |mean|)) is the input's, which
# the rounding sensitivity covers wherever the map depends on x; at width 1 it does not, and
# gamma's gradient sum g xhat (0 exactly) is formed from xhat's error alone: its terms are
# |g| X, X = rstd (|x| + |mean|). Not so the tangent's xhat dgamma: that is the forward's
# xhat (times dgamma), which forward_matches_reference holds to eps |y| already.


def _mean(a, axes):
    return a.mean(axis=axes, keepdims=True)


def _statistic_terms(x, rstd, axes):
    """``(|xhat|, X)``: xhat's size and that of the terms it is the difference of."""
    mean = _mean(x, axes)
    return np.abs(x - mean) * rstd, rstd * (np.abs(x) + np.abs(mean))


def normalisation_vjp_terms(x, g, gamma, rstd, axes, param_axes):
    """``(dx, dgamma, dbeta)`` term sizes, everything float64 and broadcast to x."""
    xhat, big = _statistic_terms(x, rstd, axes)
    gh, g = np.abs(g * gamma), np.abs(g)
    dx = rstd * (gh + _mean(gh, axes) + xhat * _mean(gh * xhat, axes))
    return dx, (g * big).sum(axis=param_axes), g.sum(axis=param_axes)


def normalisation_jvp_terms(x, dx, dgamma, dbeta, gamma, rstd, axes):
    """The output tangent's term sizes, everything float64 and broadcast to x."""
    xhat = _statistic_terms(x, rstd, axes)[0]
    centred = np.abs(dx) + _mean(np.abs(dx), axes)
    return (np.abs(gamma) * rstd * (centred + xhat * _mean(xhat * centred, axes)) + xhat * np.abs(dgamma) + np.abs(dbeta),)


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

    def vjp_terms(self, inputs, cotangents, eps=1e-5):
        """What each gradient element's rounding scales with (see normalisation_vjp_terms)."""
        x, gamma, _ = widened(inputs)
        rstd = self.normalized(x, eps)[1]
        return normalisation_vjp_terms(x, np.asarray(single(cotangents), np.float64), gamma, rstd, -1,
                                       tuple(range(x.ndim - 1)))

    def jvp_terms(self, inputs, tangents, eps=1e-5):
        x, gamma, _ = widened(inputs)
        dx, dgamma, dbeta = widened(tangents)
        return normalisation_jvp_terms(x, dx, dgamma, dbeta, gamma, self.normalized(x, eps)[1], -1)

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

    def vjp_terms(self, inputs, cotangents, eps=1e-5):
        """What each gradient element's rounding scales with (see normalisation_vjp_terms)."""
        x, gamma, _ = widened(inputs)
        _, rstd, axes = self.normalized(x, eps)
        return normalisation_vjp_terms(x, np.asarray(single(cotangents), np.float64), self.per_channel(gamma, x),
                                       rstd, axes, axes)

    def jvp_terms(self, inputs, tangents, eps=1e-5):
        x, gamma, _ = widened(inputs)
        dx, dgamma, dbeta = widened(tangents)
        _, rstd, axes = self.normalized(x, eps)
        return normalisation_jvp_terms(x, dx, self.per_channel(dgamma, x), self.per_channel(dbeta, x),
                                       self.per_channel(gamma, x), rstd, axes)

    def samples(self, rng, dtype):
        def case(shape, label, offset=0.0):
            c = shape[1]
            x = normal(rng, shape, dtype, 2.0, offset)
            return (x, normal(rng, (c,), dtype, 0.5, 1.0), normal(rng, (c,), dtype)), {"eps": 1e-5}, label

        return [case((4, 3), "(4, 3), gamma != 1"), case((2, 3, 5), "(2, 3, 5): statistics over N and L"),
                case((2, 2), "a batch of 2"), case((3, 1, 4), "one channel"), case((5, 2), "offset 100", 100.0)]
