"""The ``bench`` subcommand: step time of every available implementation, side by side.

One process, threads pinned, each implementation prepared once per (dtype, batch),
warmed up, then its step timed repeatedly; the median and the interquartile range
are reported. It is a quick look on one machine; the asv suite under
``benchmarks/`` tracks the same numbers across commits.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict

import numpy as np

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.speed.timing import DEFAULT_BATCHES, pin_threads, run_bench, steady_allocator


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
    options.add_impl(p)
    p.add_argument("--sizes", default=options.DEFAULT_SIZES, help=f"layer widths (default the seed's {options.DEFAULT_SIZES})")
    p.add_argument("--activations", help="one per layer, or one for all (default relu hidden, identity last)")
    options.add_loss(p, default=options.DEFAULT_LOSS)
    p.add_argument("--batch", type=options.positive_ints, default=list(DEFAULT_BATCHES),
                   help=f"comma-separated (default {','.join(map(str, DEFAULT_BATCHES))})")
    options.add_dtype(p, repeatable=True, help="repeatable; default both")
    p.add_argument("--threads", type=options.positive_int, default=1, help="threads for every pool (default 1)")
    p.add_argument("--min-time", type=options.positive_float, default=0.5, help="seconds of samples per point (default 0.5)")
    p.add_argument("--min-samples", type=options.positive_int, default=5, help="samples per point at least (default 5)")
    p.add_argument("--max-step", type=options.positive_float, default=2.0,
                   help="skip a point (and larger batches) when one step takes longer (default 2 s)")
    options.add_seed(p, "parameters and batch")
    p.add_argument("--plot", metavar="FILE.png", help="draw step time against batch size")
    p.add_argument("--json", metavar="FILE", help="write every timing as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from harness.core.protocol import availability
    from harness.core.spec import DTYPES

    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot {args.plot!r}: expected a .png file name")
    spec = options.network(args.sizes, args.activations, args.loss)
    impls, named = options.implementations(args.impl)
    if named:
        for impl in impls:
            reason = availability(impl)
            if reason:
                raise UsageError(f"--impl {impl.name}: unavailable: {reason}")
    dtypes = args.dtype or list(DTYPES)
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
