"""Trajectory agreement: how far two trainings from the same start on the same batches
may drift apart by rounding alone, and the twin that measures it in each run."""

from __future__ import annotations

import math

import numpy as np

from harness.core.protocol import prepare

# Two correct implementations' trajectories differ by rounding alone. Measured as the
# relative divergence max over tensors of max|p - p_ref| / max|p_ref|: one step's
# gradients differ by a few eps relative (sums over fan-in or batch taken in
# different orders), and SGD moves the parameters by lr * g, a fraction of |p|, so
# each step adds an independent difference of a few eps relative. Their signs are
# random, so after T steps the sum grows like eps * sqrt(T) (a random walk); near a
# minimum SGD contracts and damps it, while momentum (0.9 multiplies a step's
# displacement by up to 10) and a non-convex loss amplify it.
# The tolerance is TRAJECTORY_FACTOR * eps(dtype) * sqrt(T). Measured on digits
# 64-500-10 (benchmarks/train_digits.py, seeds 0-4, 880 steps, lr 0.1 momentum 0.9
# and lr 0.01 plain): torch and torch-compile against numpy stay within
# 1 * eps * sqrt(T) in float64 throughout; in float32 within ~10 * eps * sqrt(T)
# until a ReLU input rounds to either side of 0 in one implementation only, after
# which the gap jumps (seen up to 2300 * eps * sqrt(T) by epoch 19 with seed 1).
# 10**4 covers that with a margin of 4 and stays far below a wrong gradient: a 1%
# error in its scale puts the trajectory ~5e-2 away after one epoch (44 steps),
# against tolerances of 8e-3 (float32) and 1.5e-11 (float64).
#
# Where training is chaotic, even that fails: after such a jump the gap can grow
# exponentially, to 0.1 (trajectories unrelated) in float32 within 20 epochs, and
# no tolerance separates rounding from a wrong gradient any more. The harness
# detects this with a twin of the reference (``BatchReversed``: the same numpy code
# on each batch's rows in reverse order, which changes nothing but the order of the
# sums over the batch): once the twin drifts beyond TWIN_GATE of the tolerance,
# rounding is being amplified faster than the bound assumes, and later epochs are
# reported but not judged.
TRAJECTORY_FACTOR = 1e4
TWIN_GATE = 0.1


def trajectory_tolerance(dtype: str, steps: int) -> float:
    """Largest relative divergence from the reference allowed after ``steps`` steps."""
    return TRAJECTORY_FACTOR * float(np.finfo(np.dtype(dtype)).eps) * math.sqrt(max(steps, 1))


def relative_divergence(params, reference) -> float:
    """``max`` over tensors of ``max|p - p_ref| / max|p_ref|`` (NaN if either holds a NaN)."""
    worst = 0.0
    for pair, ref_pair in zip(params, reference):
        for p, ref in zip(pair, ref_pair):
            ref64 = ref.astype(np.float64)
            scale = float(np.max(np.abs(ref64))) or 1.0
            diff = float(np.max(np.abs(p.astype(np.float64) - ref64))) / scale
            if not math.isfinite(diff):
                return math.nan
            worst = max(worst, diff)
    return worst


class BatchReversed:
    """An implementation run on each batch's rows in reverse order: mathematically the
    same gradient (a mean over the batch), rounded differently. Trained beside its
    original, it shows how far rounding alone moves a trajectory in this run."""

    def __init__(self, inner):
        self.inner = inner
        self.name = f"{inner.name} (batch reversed)"
        self.capabilities = inner.capabilities

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return _BatchReversedPrepared(prepare(self.inner, spec, params, dtype=dtype, device=device, input_grad=input_grad))


class _BatchReversedPrepared:
    def __init__(self, inner):
        self.inner = inner

    def batch(self, x, y):
        return self.inner.batch(x[::-1], y[::-1])

    def __getattr__(self, name):  # step, to_numpy, synchronize, set_params: the original's
        return getattr(self.inner, name)
