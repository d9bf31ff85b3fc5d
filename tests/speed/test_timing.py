"""Timing a step (harness.speed.timing): medians, skips, the steady allocator; not speed itself."""

import time

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.core.registry import resolve
from harness.core.spec import NetworkSpec
from harness.speed.timing import Timing, run_bench, time_step

SMALL = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")

class _SleepyPrepared(Prepared):
    def __init__(self, seconds):
        self.seconds = seconds

    def step(self, batch):
        time.sleep(self.seconds)
        return 0.0, []


class _PerSamplePrepared(Prepared):
    def batch(self, x, y):
        return len(x)

    def step(self, batch):
        time.sleep(0.005 * batch)
        return 0.0, []


def test_median_and_quartiles_come_from_the_samples():
    impl = resolve("numpy")
    timing = time_step(impl, make_case(SMALL, 4, "float64"), min_time=0.01, min_samples=7, max_step=5.0)
    assert timing.skipped == ""
    assert len(timing.samples) >= 7
    assert timing.median == pytest.approx(float(np.median(timing.samples)))
    assert timing.q1 <= timing.median <= timing.q3
    assert timing.spread == pytest.approx(timing.q3 - timing.q1)


def test_a_longer_step_measures_longer():
    class Slow(Implementation):
        name = "slow"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.02)

    class Fast(Slow):
        name = "fast"

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.0)

    slow, fast = run_bench([Slow(), Fast()], SMALL, [2], ["float64"], min_time=0.01, min_samples=3)
    assert slow.median >= 0.02
    assert fast.median < slow.median


def test_a_too_slow_step_skips_its_larger_batches_with_the_reason():
    class Slow(Implementation):
        name = "slow"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.05)

    small, large = run_bench([Slow()], SMALL, [8, 2], ["float64"], min_time=0.01, min_samples=3, max_step=0.01)
    assert (small.batch, large.batch) == (2, 8)
    assert small.median is None and "one step took" in small.skipped and "--max-step" in small.skipped
    assert large.median is None and "batch 2 already too slow" in large.skipped


def test_a_batch_expected_to_be_too_slow_is_skipped_without_running():
    prepared_for = []

    class Linear(Implementation):
        """Each step sleeps 5 ms per sample."""

        name = "linear"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            prepared_for.append(spec)
            return _PerSamplePrepared()

    small, large = run_bench([Linear()], SMALL, [2, 40], ["float64"], min_time=0.01, min_samples=3, max_step=0.1)
    assert small.median >= 0.01
    assert large.median is None and "expected from batch 2" in large.skipped
    assert len(prepared_for) == 1  # batch 40 (0.2 s a step) was never prepared


def test_unsupported_dtype_is_skipped_not_timed():
    (timing,) = run_bench([resolve("pure-python")], SMALL, [2], ["float32"], min_time=0.01, min_samples=3)
    assert timing.median is None
    assert "float32" in timing.skipped



def test_timing_without_samples_has_no_spread():
    assert Timing("x", "float64", 1).spread is None
