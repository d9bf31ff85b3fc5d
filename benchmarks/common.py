"""What every benchmark shares: pinned threads, the models, seeded cases, and which
implementation may run which combination.

Kept free of asv so that ``speed_targets.py`` and ``backprop-harness bench`` measure
exactly what the asv suite measures.
"""

from __future__ import annotations

import functools
import os
import warnings

from harness.bench import pin_threads, steady_allocator
from harness.cases import make_case
from harness.registry import implementations, resolve
from harness.spec import SEED_SPEC, NetworkSpec

# One thread for every pool (OpenBLAS, OpenMP, torch's intra- and inter-op): numpy's
# and torch's pools in one process on a 2-core machine fight and slow a step 10-100x.
# Override with BACKPROP_BENCH_THREADS to measure a bigger machine.
THREADS = int(os.environ.get("BACKPROP_BENCH_THREADS", "1"))

MODELS = {
    "small": NetworkSpec((64, 32, 10), ("relu", "identity"), "cross_entropy"),
    "seed": SEED_SPEC,
}
BATCHES = (1, 64, 256)
DTYPES = ("float32", "float64")
SEED = 0

# The micrograd-style graph of scalars is a reference point, not an implementation
# the harness offers: it lives here and is added to the benchmarks by name only.
REFERENCE_POINTS = ("scalar-autograd",)

# Multiply-adds one step may cost before an implementation is left out of a
# combination, so that each benchmark finishes well within asv's timeout: a
# pure-Python step (forward and backward) runs ~2-3 M forward multiply-adds a
# second here (under a second at the budget), the scalar graph ~30 k.
STEP_BUDGET = {"pure-python": 2_000_000, "scalar-autograd": 50_000}


def pin_process(threads: int = THREADS) -> None:
    """Every thread pool in this process to ``threads``, and glibc's heap kept across
    steps (``harness.bench.steady_allocator``), before any timing; call after imports."""
    pin_threads(threads)
    steady_allocator()


def implementation_names() -> list[str]:
    """Every registered implementation, third-party ones included, then the reference points."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(implementations()) + list(REFERENCE_POINTS)


def implementation(name: str):
    if name == "scalar-autograd":
        from benchmarks.scalar_autograd import ScalarAutogradImplementation

        return ScalarAutogradImplementation()
    return resolve(name)


def multiply_adds(spec: NetworkSpec, batch: int) -> int:
    """Multiply-adds of one forward pass (the backward costs about twice as many)."""
    return batch * sum(a * b for a, b in zip(spec.sizes, spec.sizes[1:]))


def skip_reason(name: str, model: str, batch: int, dtype: str, *, budget: bool = True) -> str | None:
    """Why ``name`` cannot (or, within ``STEP_BUDGET``, should not) run this combination, or ``None``."""
    impl = implementation(name)
    spec = MODELS[model]
    reason = impl.unavailable_reason()
    if reason:
        return f"{name} unavailable: {reason}"
    reason = impl.capabilities.unsupported(spec, dtype)
    if reason:
        return f"{name}: {reason}"
    limit = STEP_BUDGET.get(name) if budget else None
    if limit is not None and multiply_adds(spec, batch) > limit:
        return f"{name}: {model} model at batch {batch} is too slow for the benchmark timeout"
    return None


@functools.cache
def case(model: str, batch: int, dtype: str):
    return make_case(MODELS[model], batch, dtype, SEED)


class Bound:
    """An implementation prepared for one case, its batch already in native form."""

    def __init__(self, name: str, model: str, batch: int, dtype: str, *, budget: bool = True):
        reason = skip_reason(name, model, batch, dtype, budget=budget)
        if reason:
            raise NotImplementedError(reason)
        self.impl = implementation(name)
        self.case = case(model, batch, dtype)
        self.prepared = self.impl.prepare(self.case.spec, self.case.params, dtype=dtype, device=self.impl.default_device())
        self.batch = self.prepared.batch(self.case.x, self.case.y)
        # Warm up (allocators, lazy initialisation, compiled graphs) outside the timing.
        self.step()
        self.forward()

    def step(self):
        result = self.prepared.step(self.batch)
        self.prepared.synchronize()
        return result

    def forward(self):
        result = self.prepared.forward(self.batch)
        self.prepared.synchronize()
        return result
