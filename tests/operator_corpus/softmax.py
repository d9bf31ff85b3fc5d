"""softmax, log_softmax and logsumexp along an axis, with their realistic backward bugs
and a correct variant at large logits.

Samples reduce over the last axis, over axis 0, over the middle axis of a rank-3 input,
over a width-1 axis, and at logits of magnitude 1e3 (an overflowing exp shows).

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_softmax.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import normal, single
from harness.ops.numpy_softmax import LogSoftmax, LogSumExp, Softmax, softmax

# --- bugs ------------------------------------------------------------------------------------


class SoftmaxDiagonalOnly(Softmax):
    """softmax backward s * (1 - s) * g: the Jacobian's diagonal only, the -s_i s_j term missing."""

    source = "https://github.com/deeplearning4j/libnd4j/issues/440"

    def vjp(self, inputs, cotangents, axis=-1):
        s = softmax(inputs[0], axis)
        return (s * (1 - s) * single(cotangents),)


class SoftmaxCotangentTwice(Softmax):
    """softmax backward multiplies the Jacobian-vector product by the cotangent once more."""

    source = "https://github.com/pocketpy/cTensor/pull/31"

    def vjp(self, inputs, cotangents, axis=-1):
        (dx,) = super().vjp(inputs, cotangents, axis)
        return (dx * single(cotangents),)


class SoftmaxFixedAxis0(Softmax):
    """softmax over axis 0 whatever axis is asked for, in forward and backward (consistent)."""

    source = "https://github.com/nerdai/llms-from-scratch-rs/pull/30"

    def forward(self, x, axis=-1):
        return super().forward(x, axis=0)

    def vjp(self, inputs, cotangents, axis=-1):
        return super().vjp(inputs, cotangents, axis=0)

    def jvp(self, inputs, tangents, axis=-1):
        return super().jvp(inputs, tangents, axis=0)


class SoftmaxNoMaxSubtraction(Softmax):
    """softmax exp(x) / sum(exp(x)) without subtracting the max: inf / inf = nan at large logits."""

    source = "classic; the harness's MLP corpus has it too (UnstableSoftmax)"

    def forward(self, x, axis=-1):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(x)
            return e / e.sum(axis=axis, keepdims=True)

    def vjp(self, inputs, cotangents, axis=-1):
        s, g = self.forward(inputs[0], axis), single(cotangents)
        return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)


class SoftmaxOverwritesCotangent(Softmax):
    """softmax backward works in place on the cotangent it was given (g -= ...; g *= s)."""

    source = "in-place ops on grad_output: https://github.com/pytorch/pytorch/issues/31938 (family)"

    def vjp(self, inputs, cotangents, axis=-1):
        s, g = softmax(inputs[0], axis), single(cotangents)
        g -= (g * s).sum(axis=axis, keepdims=True)
        g *= s
        return (g,)


class SoftmaxJvpDiagonalOnly(Softmax):
    """softmax's forward-mode rule s * (1 - s) * t: the VJP is right, the JVP keeps only the diagonal."""

    source = "the memo's #22 in forward mode (a jax custom_jvp rule written from the diagonal)"

    def jvp(self, inputs, tangents, axis=-1):
        s = softmax(inputs[0], axis)
        return (s * (1 - s) * tangents[0],)


class LogSoftmaxMissingSum(LogSoftmax):
    """log_softmax backward g - softmax * g, where g - softmax * sum(g) is needed."""

    source = "https://github.com/mlpack/mlpack/issues/2360"

    def vjp(self, inputs, cotangents, axis=-1):
        g = single(cotangents)
        return (g - softmax(inputs[0], axis) * g,)


class LogSumExpMaxHalfDifferentiated(LogSumExp):
    """logsumexp max trick with m differentiated in one of its two appearances: + onehot(argmax)."""

    source = "the memo's #52; the gradient of m cancels only if both appearances are differentiated"

    def vjp(self, inputs, cotangents, axis=-1):
        x = inputs[0]
        onehot = np.zeros_like(x)
        np.put_along_axis(onehot, np.expand_dims(x.argmax(axis=axis), axis), 1, axis=axis)
        return (np.expand_dims(single(cotangents), axis) * (softmax(x, axis) + onehot),)


class LogSumExpNaive(LogSumExp):
    """logsumexp as log(sum(exp(x))): inf for logits past ~710, and a nan gradient."""

    source = "https://github.com/pytorch/pytorch/issues/31829 (family)"

    def forward(self, x, axis=-1):
        with np.errstate(over="ignore"):
            return np.log(np.exp(x).sum(axis=axis))

    def vjp(self, inputs, cotangents, axis=-1):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(inputs[0])
            return (np.expand_dims(single(cotangents), axis) * e / e.sum(axis=axis, keepdims=True),)


class LogSumExpFloat32Gradient(LogSumExp):
    """logsumexp backward computed in float32: float32 gradients for float64 inputs."""

    source = "float32 'use double': https://github.com/pytorch/pytorch/issues/5351"

    def vjp(self, inputs, cotangents, axis=-1):
        return super().vjp((inputs[0].astype(np.float32),), np.asarray(single(cotangents), np.float32), axis)


# --- correct variants ------------------------------------------------------------------------


class SoftmaxLargeLogits(Softmax):
    """softmax on logits of magnitude 1e3 to 1e4: correct with the max subtracted."""

    def samples(self, rng, dtype):
        # "logits ~ 1e4" has gaps of hundreds, where every derivative is below rounding: it
        # cannot be judged (entries.UNJUDGEABLE); logits of 1e4 a few apart can
        return [((normal(rng, (3, 4), dtype, 1e4),), {"axis": -1}, "logits ~ 1e4"),
                ((np.array([[1000.0, 1000.0, -1000.0]], dtype),), {"axis": -1}, "tied large logits"),
                ((normal(rng, (3, 4), dtype, 3.0, 1e4),), {"axis": -1}, "logits 1e4, a few apart")]
