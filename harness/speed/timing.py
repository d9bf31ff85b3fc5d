"""Timing a step: pinned thread pools, a steady allocator, an implementation prepared
once with its batch in native form, and the median of repeated steps.

``PreparedStep`` is what both ``backprop-harness bench`` (through ``time_step``) and
the asv suite time, so the two measure the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from harness.core.cases import Case, make_case
from harness.core.containment import restoring_global_state, summarise, user_interrupted, watching_interrupts
from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.process_settings import pin_threads, steady_allocator  # noqa: F401 (the benchmarks import them from here)
from harness.core.protocol import Implementation, availability, default_device, prepare

DEFAULT_BATCHES = (1, 64, 256)


class PreparedStep:
    """``impl`` prepared for ``case`` with the batch already in native form: ``step``
    and ``forward`` run one call each and wait for the device, nothing else."""

    def __init__(self, impl: Implementation, case: Case, device: str | None = None):
        self.impl, self.case = impl, case
        self.device = device or impl.default_device()
        self.prepared = prepare(impl, case.spec, case.params, dtype=case.dtype, device=self.device)
        self.native = self.prepared.batch(case.x, case.y)

    def step(self):
        result = self.prepared.step(self.native)
        self.prepared.synchronize()
        return result

    def forward(self):
        result = self.prepared.forward(self.native)
        self.prepared.synchronize()
        return result

    def timed_step(self) -> float:
        """Seconds one ``step`` takes."""
        start = time.perf_counter()
        self.step()
        return time.perf_counter() - start


@dataclass
class Timing:
    """One implementation at one dtype and batch size; times in seconds."""

    implementation: str
    dtype: str
    batch: int
    device: str = ""
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    samples: list = field(default_factory=list)
    skipped: str = ""
    error: str = ""  # what the implementation raised, or its worker's CRASHED or TIMEOUT: one line

    @property
    def spread(self) -> float | None:
        """The interquartile range, in seconds."""
        return None if self.q1 is None else self.q3 - self.q1


def time_step(impl: Implementation, case: Case, *, min_time: float, min_samples: int, max_step: float) -> Timing:
    """Prepare ``impl`` for ``case``, warm up, then time its step until ``min_time``
    seconds and ``min_samples`` samples are both reached. Whatever the implementation
    raises (anything but the user's Ctrl-C) is recorded in ``Timing.error``."""
    timing = Timing(impl.name, case.dtype, case.batch)
    reason = availability(impl) or impl.capabilities.unsupported(case.spec, case.dtype)
    if reason:
        timing.skipped = reason
        return timing
    phase = "prepare"
    try:
        with restoring_global_state():
            timing.device = default_device(impl)
            bound = PreparedStep(impl, case, timing.device)
            phase = "step"
            # Timed where the step runs (Prepared.timed_steps: inside a worker for one),
            # so a worker's round trips are not in the numbers.
            first = bound.prepared.timed_steps(bound.native, min_runs=1, min_seconds=0.0)[0]  # warm-up: caches, allocator
            if first > max_step:
                timing.skipped = f"one step took {first:.3g} s (> --max-step {max_step:g} s)"
                return timing
            samples = bound.prepared.timed_steps(bound.native, min_runs=min_samples, min_seconds=min_time)
    except ImplementationGone as exc:  # its worker died or hung
        timing.error = f"{exc.verdict.value}: {exc}"
        return timing
    except RemoteError as exc:  # raised in its worker, which said what and where
        timing.error = str(exc)
        return timing
    except BaseException as exc:
        if user_interrupted(exc):
            raise
        timing.error = summarise(exc, phase)
        return timing
    timing.samples = samples
    timing.q1, timing.median, timing.q3 = (float(v) for v in np.percentile(samples, [25, 50, 75]))
    return timing


def run_bench(impls, spec, batches, dtypes, *, seed=0, min_time=0.5, min_samples=5, max_step=2.0, progress=None):
    """Time every implementation over ``dtypes`` x ``batches``; returns ``Timing`` records.

    Batches run in increasing order; once a step exceeds ``max_step``, or a step is
    expected to (the last median scaled by the batch ratio: a step costs at most
    about linearly more with the batch), the larger batches of that implementation
    and dtype are skipped, with the reason. An implementation that raises gets
    ``Timing.error`` for that point, and the others go on."""
    with watching_interrupts():
        return _run_bench(impls, spec, batches, dtypes, seed, min_time, min_samples, max_step, progress)


def _run_bench(impls, spec, batches, dtypes, seed, min_time, min_samples, max_step, progress):
    plan = [(impl, dtype, batch) for impl in impls for dtype in dtypes for batch in sorted(batches)]
    task = progress.add_task("timing", total=len(plan)) if progress else None
    timings, too_slow, last = [], {}, {}
    for impl, dtype, batch in plan:
        if progress:
            progress.update(task, description=f"{impl.name} {dtype} batch {batch}")
        key = (impl.name, dtype)
        previous = last.get(key)
        if key not in too_slow and previous is not None and previous.median * batch / previous.batch > max_step:
            expected = previous.median * batch / previous.batch
            too_slow[key] = f"~{expected:.3g} s a step expected from batch {previous.batch} (> --max-step {max_step:g} s)"
        if key in too_slow:
            timings.append(Timing(impl.name, dtype, batch, skipped=too_slow[key]))
        else:
            timing = time_step(impl, make_case(spec, batch, dtype, seed), min_time=min_time, min_samples=min_samples,
                               max_step=max_step)
            if timing.error.startswith(("CRASHED:", "TIMEOUT:")):  # its worker died or hung: not again for each batch
                too_slow[key] = f"not run: batch {batch} {timing.error.split(':', 1)[0]}"
            if timing.skipped.startswith("one step took"):
                too_slow[key] = f"batch {batch} already too slow: {timing.skipped}"
            if timing.median is not None:
                last[key] = timing
            timings.append(timing)
        if progress:
            progress.advance(task)
    return timings
