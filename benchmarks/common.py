"""What every benchmark shares: pinned threads, the models, seeded cases, and which
implementation may run which combination.

Kept free of asv so that ``speed_targets.py`` and ``backprop-harness bench`` measure
exactly what the asv suite measures.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

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

# Worker programs in any language, measured like the registered implementations.
ROOT = Path(__file__).resolve().parents[1]
WORKERS_FILE = Path(__file__).with_name("workers.json")


def pin_process(threads: int = THREADS) -> None:
    """Every thread pool in this process to ``threads``, and glibc's heap kept across
    steps (``harness.speed.timing.steady_allocator``), before any timing; call after imports."""
    pin_threads(threads)
    steady_allocator()


def implementation_names() -> list[str]:
    """Every registered implementation, third-party ones included, then the reference
    points and the worker programs of ``workers.json``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(implementations()) + list(REFERENCE_POINTS) + list(foreign_workers())


def foreign_workers() -> dict:
    """``workers.json``: name -> how to build (optional) and run the program."""
    if not WORKERS_FILE.exists():
        return {}
    return {k: v for k, v in json.loads(WORKERS_FILE.read_text()).items() if not k.startswith("//")}


@functools.cache
def implementation(name: str):
    """The implementation of that name: a worker program from ``workers.json``
    (built on first use; ``NotImplementedError`` where its tools are missing), else a
    registered one or a reference point, in this process as the asv suite measures."""
    if name in foreign_workers():
        from harness.workers.remote import WorkerImplementation

        worker = WorkerImplementation(_worker_command(name, foreign_workers()[name]), name=name, threads=THREADS,
                                      pin=True, return_inputs=False)
        atexit.register(worker.close)
        return worker
    return resolve(REFERENCE_POINTS.get(name, name))


def _worker_command(name: str, entry: dict) -> list[str]:
    build = entry.get("build")
    tools = [build[0]] if build else []
    missing = [t for t in [*tools, entry["command"][0]] if "{build}" not in t and shutil.which(t) is None]
    if missing:
        raise NotImplementedError(f"{name}: {', '.join(missing)} is not installed")
    folder = ""
    if build:
        digest = hashlib.sha256(b"".join((ROOT / s).read_bytes() for s in entry.get("sources", ()))).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / "backprop-harness-workers" / f"{name}-{digest}"
        if not folder.is_dir():  # built once per source version, shared by asv's processes
            folder.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=folder.parent))
            subprocess.run([part.replace("{build}", str(partial)) for part in build], cwd=ROOT, check=True)
            try:
                partial.rename(folder)
            except OSError:  # another process built it first
                shutil.rmtree(partial, ignore_errors=True)
    return [str(ROOT / p) if p.startswith("workers/") else p for p in (part.replace("{build}", str(folder)) for part in entry["command"])]


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
