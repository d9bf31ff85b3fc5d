"""Timing a step: pinned thread pools, a steady allocator, an implementation prepared
once with its batch in native form, and the median of repeated steps.

``PreparedStep`` is what both ``backprop-harness bench`` (through ``time_step``) and
the asv suite time, so the two measure the same thing.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from harness.core.cases import Case, make_case
from harness.core.containment import restoring_global_state, summarise, user_interrupted, watching_interrupts
from harness.core.protocol import Implementation, availability, default_device, prepare

DEFAULT_BATCHES = (1, 64, 256)


def pin_threads(threads: int) -> None:
    """Every thread pool (OpenBLAS, OpenMP, torch's) to ``threads``: numpy's and
    torch's pools in one process on a small machine otherwise fight. Call after imports."""
    from threadpoolctl import threadpool_limits

    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
    threadpool_limits(threads)


# mallopt(3) parameters, and the largest mmap threshold glibc accepts on 64-bit
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def steady_allocator() -> bool:
    """Keep the memory a step frees in glibc's heap for the next step.

    By default glibc hands large blocks to the kernel (mmap, and trimming the heap)
    and takes them back on the next step, so a step pays page faults or not depending
    on the order its arrays were allocated in: up to 10-15 % of a seed-model step, and
    different for each implementation. Raising both thresholds takes that out of every
    contender's timing alike. Returns whether it applied (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 16 * _MMAP_THRESHOLD_MAX)
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


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
    error: str = ""  # what the implementation raised: one line

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
            first = bound.timed_step()  # warm-up: lazy initialisation, allocator, caches
            if first > max_step:
                timing.skipped = f"one step took {first:.3g} s (> --max-step {max_step:g} s)"
                return timing
            samples = []
            deadline = time.perf_counter() + min_time
            while len(samples) < min_samples or time.perf_counter() < deadline:
                samples.append(bound.timed_step())
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
            if timing.skipped.startswith("one step took"):
                too_slow[key] = f"batch {batch} already too slow: {timing.skipped}"
            if timing.median is not None:
                last[key] = timing
            timings.append(timing)
        if progress:
            progress.advance(task)
    return timings
