"""What every benchmark shares: pinned threads, the models, seeded cases, and which
implementation may run which combination.

Kept free of asv so that ``speed_targets.py`` and ``backprop-harness bench`` measure
exactly what the asv suite measures.
"""

from __future__ import annotations

import functools
import os
import warnings

from harness.checks.planner import left_out
from harness.core.cases import make_case
from harness.core.registry import implementations, resolve
from harness.core.spec import SEED_SPEC, NetworkSpec
from harness.speed.timing import PreparedStep, pin_threads, steady_allocator

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
# the harness offers: it lives here and is added to the benchmarks beside the registry.
REFERENCE_POINTS = {"scalar-autograd": "benchmarks.scalar_autograd:ScalarAutogradImplementation"}


def pin_process(threads: int = THREADS) -> None:
    """Every thread pool in this process to ``threads``, and glibc's heap kept across
    steps (``harness.speed.timing.steady_allocator``), before any timing; call after imports."""
    pin_threads(threads)
    steady_allocator()


def implementation_names() -> list[str]:
    """Every registered implementation, third-party ones included, then the reference points."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(implementations()) + list(REFERENCE_POINTS)


def implementation(name: str):
    return resolve(REFERENCE_POINTS.get(name, name))


def skip_reason(name: str, model: str, batch: int, dtype: str, *, budget: bool = True) -> str | None:
    """Why ``name`` cannot (or, within its declared ``max_multiply_adds``, should not)
    run this combination, or ``None``: the planner's rule, as for the default battery."""
    reason = left_out(implementation(name), MODELS[model], dtype, batch, budget=budget)
    return f"{name}: {reason}" if reason else None


@functools.cache
def case(model: str, batch: int, dtype: str):
    return make_case(MODELS[model], batch, dtype, SEED)


class Bound(PreparedStep):
    """An implementation prepared for one benchmark combination (or ``NotImplementedError``,
    which asv shows as n/a), its batch in native form and warmed up."""

    def __init__(self, name: str, model: str, batch: int, dtype: str, *, budget: bool = True):
        reason = skip_reason(name, model, batch, dtype, budget=budget)
        if reason:
            raise NotImplementedError(reason)
        super().__init__(implementation(name), case(model, batch, dtype))
        # Warm up (allocators, lazy initialisation, compiled graphs) outside the timing.
        self.step()
        self.forward()
