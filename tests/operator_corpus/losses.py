"""Losses: mean squared error and cross entropy (integer labels, ignore_index, label
smoothing, mean over the rows that count, as torch.nn.functional.cross_entropy) -- with
their realistic backward bugs. Both return a 0-d array; the cotangent is a scalar that
is not 1 in the engine's cases, so a backward that assumes 1 is visible.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_losses.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_losses import CrossEntropy, Mse
from harness.ops.numpy_operator import single

# --- bugs ------------------------------------------------------------------------------------


class MseNotDividedByN(Mse):
    """mse backward 2 (y - t) without the 1/N of the mean."""

    source = "https://github.com/karpathy/nn-zero-to-hero/pull/20"

    def vjp(self, inputs, cotangents):
        y, t = inputs
        d = 2 * (y - t) * single(cotangents)
        return d, -d


class MseTargetGradientSign(Mse):
    """mse target gradient +d instead of -d: the sign of the subtrahend is lost."""

    source = "https://github.com/KhawajaAbaid/micrograd_c/issues/1"

    def vjp(self, inputs, cotangents):
        d, _ = super().vjp(inputs, cotangents)
        return d, d


class MseGradientNotMultiplied(Mse):
    """mse backward assumes the upstream gradient is 1: the cotangent is never used."""

    source = "torch gradcheck's 'backward not multiplied by grad_output' test exists for this"

    def vjp(self, inputs, cotangents):
        return super().vjp(inputs, np.ones((), inputs[0].dtype))


class CrossEntropySubtractsLabels(CrossEntropy):
    """cross entropy gradient softmax - labels with integer labels (broadcast), not - one_hot(labels)."""

    source = "classic; the memo's #26"

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        logp, valid, _ = self.parts(logits, labels, ignore_index, label_smoothing)
        d = (np.exp(logp) - labels[:, None]) * valid[:, None] / valid.sum() * single(cotangents)
        return d, None


class CrossEntropyDividesByBatch(CrossEntropy):
    """cross entropy gradient divided by the batch size, the loss by the rows that count."""

    source = "https://github.com/linkedin/Liger-Kernel/pull/198"

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        d, _ = super().vjp(inputs, cotangents, ignore_index, label_smoothing)
        valid = inputs[1] != ignore_index
        return d * valid.sum() / len(valid), None


class CrossEntropyIgnoredRowsGetGradient(CrossEntropy):
    """cross entropy: rows with target == ignore_index still get softmax - target."""

    source = "https://github.com/PaddlePaddle/Paddle/pull/28622"

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        return (np.exp(logp) - target) / valid.sum() * single(cotangents), None


class CrossEntropySmoothingIncludesIgnored(CrossEntropy):
    """label smoothing's uniform eps/C term counted for ignored rows too (forward and backward)."""

    source = "https://github.com/pytorch/pytorch/issues/73205"

    def forward(self, logits, labels, ignore_index=-100, label_smoothing=0.0):
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        nll = -(target - label_smoothing / logits.shape[-1]) * logp
        smooth = -label_smoothing * logp.mean(axis=-1)
        return np.asarray((nll.sum(axis=-1) @ valid + smooth.sum()) / valid.sum())

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        p, uniform = np.exp(logp), label_smoothing / logits.shape[-1]
        nll = (1 - label_smoothing) * p - (target - uniform)
        d = (nll * valid[:, None] + label_smoothing * p - uniform) / valid.sum() * single(cotangents)
        return d, None

    def jvp(self, inputs, tangents, ignore_index=-100, label_smoothing=0.0):
        d, _ = self.vjp(inputs, np.ones((), inputs[0].dtype), ignore_index, label_smoothing)
        return (np.asarray((d * tangents[0]).sum()),)


class CrossEntropyGradientForLabels(CrossEntropy):
    """cross entropy returns a zero array as the 'gradient' of the integer labels, not None."""

    source = "the contract: integer inputs get no gradient"

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        d, _ = super().vjp(inputs, cotangents, ignore_index, label_smoothing)
        return d, np.zeros_like(inputs[1])


# --- correct variants ------------------------------------------------------------------------


class HalfMse(Mse, correct=True):
    """mse with a 1/2 factor, L = mean((y - t)^2) / 2, and its own gradient (y - t)/N:
    correct for that loss (https://github.com/davisking/dlib/issues/1169)."""

    name = "half_mse"

    def forward(self, y, t):
        return np.asarray(0.5 * np.mean((y - t) ** 2))

    def vjp(self, inputs, cotangents):
        y, t = inputs
        d = (y - t) / y.size * single(cotangents)
        return d, -d

    def jvp(self, inputs, tangents):
        (out,) = super().jvp(inputs, tangents)
        return (0.5 * out,)
