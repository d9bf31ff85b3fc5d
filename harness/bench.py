"""The ``bench`` subcommand: step time of every available implementation, side by side.

One process, threads pinned, each implementation prepared once per (dtype, batch),
warmed up, then its step timed repeatedly; the median and the interquartile range
are reported. It is a quick look on one machine; the asv suite under
``benchmarks/`` tracks the same numbers across commits.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.arguments import positive_float, positive_int, positive_ints

DEFAULT_BATCHES = (1, 64, 256)


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

    @property
    def spread(self) -> float | None:
        """The interquartile range, in seconds."""
        return None if self.q1 is None else self.q3 - self.q1


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


def time_step(impl, case, *, min_time: float, min_samples: int, max_step: float) -> Timing:
    """Prepare ``impl`` for ``case``, warm up, then time its step until ``min_time``
    seconds and ``min_samples`` samples are both reached."""
    timing = Timing(impl.name, case.dtype, case.batch, impl.default_device())
    reason = impl.unavailable_reason() or impl.capabilities.unsupported(case.spec, case.dtype)
    if reason:
        timing.skipped = reason
        return timing
    prepared = impl.prepare(case.spec, case.params, dtype=case.dtype, device=timing.device)
    native = prepared.batch(case.x, case.y)

    def one_step() -> float:
        start = time.perf_counter()
        prepared.step(native)
        prepared.synchronize()
        return time.perf_counter() - start

    first = one_step()  # warm-up: lazy initialisation, allocator, caches
    if first > max_step:
        timing.skipped = f"one step took {first:.3g} s (> --max-step {max_step:g} s)"
        return timing
    samples = []
    deadline = time.perf_counter() + min_time
    while len(samples) < min_samples or time.perf_counter() < deadline:
        samples.append(one_step())
    timing.samples = samples
    timing.q1, timing.median, timing.q3 = (float(v) for v in np.percentile(samples, [25, 50, 75]))
    return timing


def run_bench(impls, spec, batches, dtypes, *, seed=0, min_time=0.5, min_samples=5, max_step=2.0, progress=None):
    """Time every implementation over ``dtypes`` x ``batches``; returns ``Timing`` records.

    Batches run in increasing order; once a step exceeds ``max_step``, or a step is
    expected to (the last median scaled by the batch ratio: a step costs at most
    about linearly more with the batch), the larger batches of that implementation
    and dtype are skipped, with the reason."""
    from harness.cases import make_case

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
            timings.append(Timing(impl.name, dtype, batch, impl.default_device(), skipped=too_slow[key]))
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


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def print_table(timings, console) -> None:
    from rich.table import Table

    batches = sorted({t.batch for t in timings})
    table = Table(title="step time: median (interquartile range)")
    table.add_column("implementation")
    table.add_column("dtype")
    table.add_column("device")
    for batch in batches:
        table.add_column(f"batch {batch}", justify="right")
    rows = {}
    for t in timings:
        rows.setdefault((t.implementation, t.dtype), {})[t.batch] = t
    for (name, dtype), by_batch in rows.items():
        cells = []
        for batch in batches:
            t = by_batch.get(batch)
            if t is None:
                cells.append("")
            elif t.skipped:
                cells.append(f"[yellow]n/a: {t.skipped}[/]")
            else:
                cells.append(f"{_format_seconds(t.median)} ({_format_seconds(t.spread)})")
        device = next(iter(by_batch.values())).device
        table.add_row(name, dtype, device, *cells)
    console.print(table)


def write_json(timings, path, *, spec, threads) -> None:
    from threadpoolctl import threadpool_info

    document = {
        "sizes": list(spec.sizes),
        "activations": list(spec.activations),
        "loss": spec.loss,
        "threads": threads,
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()
        ],
        "timings": [{**asdict(t), "spread": t.spread} for t in timings],
    }
    with open(path, "w") as f:
        json.dump(document, f, indent=2)


def plot(timings, path, *, spec) -> None:
    """Median step time against batch size, one line per implementation and dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    lines = {}
    for t in timings:
        if t.median is not None:
            lines.setdefault((t.implementation, t.dtype), []).append(t)
    for (name, dtype), points in sorted(lines.items()):
        points.sort(key=lambda t: t.batch)
        batches = [t.batch for t in points]
        medians = np.array([t.median for t in points])
        errors = np.array([[t.median - t.q1 for t in points], [t.q3 - t.median for t in points]])
        ax.errorbar(batches, medians, yerr=errors, marker="o", capsize=3, label=f"{name} {dtype}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("step time (s): forward, loss, backward")
    ax.set_title(f"{'-'.join(map(str, spec.sizes))} {spec.loss}, median and interquartile range")
    ax.grid(True, which="both", alpha=0.3)
    if lines:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- command line ------------------------------------------------------------------


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="step time of every available implementation, side by side")
    p.add_argument("--impl", action="append", metavar="NAME|module:attr", help="repeatable; default every available one")
    p.add_argument("--sizes", default="784,500,10", help="layer widths (default the seed's 784,500,10)")
    p.add_argument("--activations", help="one per layer, or one for all (default relu hidden, identity last)")
    p.add_argument("--loss", choices=["cross_entropy", "mse"], default="cross_entropy")
    p.add_argument("--batch", type=positive_ints, default=list(DEFAULT_BATCHES), help="comma-separated (default 1,64,256)")
    p.add_argument("--dtype", action="append", choices=["float32", "float64"], help="repeatable; default both")
    p.add_argument("--threads", type=positive_int, default=1, help="threads for every pool (default 1)")
    p.add_argument("--min-time", type=positive_float, default=0.5, help="seconds of samples per point (default 0.5)")
    p.add_argument("--min-samples", type=positive_int, default=5, help="samples per point at least (default 5)")
    p.add_argument("--max-step", type=positive_float, default=2.0,
                   help="skip a point (and larger batches) when one step takes longer (default 2 s)")
    p.add_argument("--seed", type=int, default=0, help="seed for parameters and batch (default 0)")
    p.add_argument("--plot", metavar="FILE.png", help="draw step time against batch size")
    p.add_argument("--json", metavar="FILE", help="write every timing as JSON")
    p.set_defaults(func=cmd_bench)


def _spec_from_args(args):
    from harness.spec import NetworkSpec

    n_layers = args.sizes.count(",")
    activations = args.activations or ",".join(["relu"] * (n_layers - 1) + ["identity"])
    return NetworkSpec.parse(args.sizes, activations, args.loss)


def cmd_bench(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from harness.cli import EXIT_FAILED, EXIT_OK, UsageError, resolve_impls

    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot {args.plot!r}: expected a .png file name")
    spec = _spec_from_args(args)
    impls, named = resolve_impls(args.impl)
    if named:
        for impl in impls:
            reason = impl.unavailable_reason()
            if reason:
                raise UsageError(f"--impl {impl.name}: unavailable: {reason}")
    dtypes = args.dtype or ["float32", "float64"]
    pin_threads(args.threads)
    steady_allocator()
    console = Console()
    with warnings.catch_warnings(), Progress(console=console, transient=True) as progress:
        warnings.simplefilter("ignore")
        timings = run_bench(impls, spec, args.batch, dtypes, seed=args.seed, min_time=args.min_time,
                            min_samples=args.min_samples, max_step=args.max_step, progress=progress)
    print_table(timings, console)
    console.print(f"{'-'.join(map(str, spec.sizes))} {spec.loss}; {args.threads} thread(s) per pool")
    if args.json:
        write_json(timings, args.json, spec=spec, threads=args.threads)
    if args.plot:
        plot(timings, args.plot, spec=spec)
    return EXIT_OK if any(t.median is not None for t in timings) else EXIT_FAILED
