"""softmax, log_softmax and logsumexp along an axis, (bugs and a
correct variant at large logits in tests/operator_corpus/softmax.py).

Samples reduce over the last axis, over axis 0, over the middle axis of a rank-3 input,
over a width-1 axis, and at logits of magnitude 1e3 (an overflowing exp shows).
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import In, Operator, normal, single


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def logit_samples(rng, dtype):
    return [
        ((normal(rng, (3, 5), dtype, 2.0),), {"axis": -1}, "3x5 over the last axis"),
        ((normal(rng, (4, 3), dtype, 2.0),), {"axis": 0}, "4x3 over axis 0"),
        ((normal(rng, (2, 3, 4), dtype, 2.0),), {"axis": 1}, "rank 3 over the middle axis"),
        ((normal(rng, (4, 1), dtype),), {"axis": -1}, "width 1 along the axis"),
        ((normal(rng, (2, 4), dtype, 1e3),), {"axis": -1}, "large logits (scale 1e3)"),
    ]


class Softmax(Operator, correct=True):
    """softmax along an axis, max subtracted before exp."""

    name = "softmax"
    inputs = (In((3, 5)),)
    params = {"axis": -1}

    def forward(self, x, axis=-1):
        return softmax(x, axis)

    def vjp(self, inputs, cotangents, axis=-1):
        s, g = softmax(inputs[0], axis), single(cotangents)
        return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)

    def jvp(self, inputs, tangents, axis=-1):
        s, (t,) = softmax(inputs[0], axis), tangents
        return (s * (t - (t * s).sum(axis=axis, keepdims=True)),)

    # The terms the backward and the JVP add up, in absolute value (what their rounding
    # scales with: ``harness.core.mapping``, ``vjp_terms``). Where a row saturates (logits
    # far apart), s (g - sum s g) cancels below 1e-300 for the top element (1 - s rounds to
    # 0) while its terms stay of the size of g: no float64 value there can be judged
    # (INCONCLUSIVE), where the result's own size let one in 12 seeds fail a right softmax.
    def vjp_terms(self, inputs, cotangents, axis=-1):
        return (_terms(inputs[0], single(cotangents), axis),)

    def jvp_terms(self, inputs, tangents, axis=-1):
        return (_terms(inputs[0], single(tangents), axis),)

    def samples(self, rng, dtype):
        return logit_samples(rng, dtype)


def _terms(x, g, axis):
    s, g = softmax(np.asarray(x, np.float64), axis), np.abs(np.asarray(g, np.float64))
    return s * (g + (g * s).sum(axis=axis, keepdims=True))


class LogSoftmax(Operator, correct=True):
    """log_softmax along an axis: x - logsumexp(x)."""

    name = "log_softmax"
    inputs = (In((3, 5)),)
    params = {"axis": -1}

    def forward(self, x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def vjp(self, inputs, cotangents, axis=-1):
        g = single(cotangents)
        return (g - softmax(inputs[0], axis) * g.sum(axis=axis, keepdims=True),)

    def jvp(self, inputs, tangents, axis=-1):
        (t,) = tangents
        return (t - (softmax(inputs[0], axis) * t).sum(axis=axis, keepdims=True),)

    def samples(self, rng, dtype):
        return logit_samples(rng, dtype)


class LogSumExp(Operator, correct=True):
    """logsumexp over an axis (reduced away), max trick with the max's gradient cancelling."""

    name = "logsumexp"
    inputs = (In((3, 5)),)
    params = {"axis": -1}

    def forward(self, x, axis=-1):
        m = x.max(axis=axis, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)

    def vjp(self, inputs, cotangents, axis=-1):
        return (np.expand_dims(single(cotangents), axis) * softmax(inputs[0], axis),)

    def jvp(self, inputs, tangents, axis=-1):
        return ((softmax(inputs[0], axis) * tangents[0]).sum(axis=axis),)

    def samples(self, rng, dtype):
        return logit_samples(rng, dtype)
