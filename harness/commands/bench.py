"""The ``bench`` subcommand: step time of every available implementation, side by side.

One process, threads pinned, each implementation prepared once per (dtype, batch),
warmed up, then its step timed repeatedly; the median and the interquartile range
are reported. It is a quick look on one machine; the asv suite under
``benchmarks/`` tracks the same numbers across commits.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

import numpy as np

from harness.commands import options, running
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.speed.timing import DEFAULT_BATCHES, Timing, pin_threads, run_bench, steady_allocator


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def print_table(timings, console) -> None:
    from rich.table import Table

    from harness.core.results import shown

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
            elif t.error:
                cells.append(f"[bold red]ERROR[/]: {shown(t.error)}")
            elif t.skipped:
                cells.append(f"[yellow]n/a: {shown(t.skipped)}[/]")
            else:
                cells.append(f"{_format_seconds(t.median)} ({_format_seconds(t.spread)})")
        device = next(iter(by_batch.values())).device
        table.add_row(shown(name), dtype, shown(device), *cells)
    console.print(table)


def write_json(timings, path, *, spec, threads, ok=True, reason="") -> None:
    """Every timing as strict JSON (``null`` where a point was skipped or erred; its
    ``skipped`` or ``error`` says why); ``ok`` is what the exit status says."""
    from threadpoolctl import threadpool_info

    from harness.core.output_files import write_json as write_strict

    document = {
        "ok": ok,
        "reason": reason or None,
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
    write_strict(path, document)


def plot(timings, path, *, spec) -> None:
    """Median step time against batch size, one line per implementation and dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.core.output_files import save_figure

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
    save_figure(fig, path, dpi=100)


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
    p.add_argument("--threads", type=options.threads, default=1, help="threads for every pool (default 1)")
    p.add_argument("--min-time", type=options.seconds, default=0.5, help="seconds of samples per point (default 0.5)")
    p.add_argument("--min-samples", type=options.integer_in(1, 1_000_000), default=5,
                   help="samples per point at least (default 5)")
    p.add_argument("--max-step", type=options.seconds, default=2.0,
                   help="skip a point (and larger batches) when one step takes longer (default 2 s)")
    options.add_seed(p, "parameters and batch")
    options.add_workers(p)
    p.add_argument("--plot", metavar="FILE.png", help="draw step time against batch size")
    p.add_argument("--json", metavar="FILE", help="write every timing as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from rich.console import Console
    from rich.progress import Progress

    from harness.core.memory import require, step_bytes
    from harness.core.protocol import availability
    from harness.core.results import printable
    from harness.core.spec import DTYPES

    options.checked_outputs(args)
    spec = options.network(args.sizes, args.activations, args.loss)
    require(step_bytes(spec, max(args.batch)), f"timing {spec.describe()} at batch {max(args.batch)}")
    where = running.placement(args)
    # Each worker pins its own pools and allocator (timing happens inside it).
    impls, named = running.select(args.impl, where, threads=args.threads, pin=True, judged=False)
    console = Console()
    try:
        impls, failures = running.start(impls, where)
        if named:
            for impl in impls:
                reason = availability(impl)
                if reason:
                    raise UsageError(f"--impl {impl.name}: unavailable: {reason}")
        dtypes = args.dtype or list(DTYPES)
        if where.in_process:
            pin_threads(args.threads)
            steady_allocator()
        with warnings.catch_warnings(), Progress(console=console, transient=True, redirect_stdout=False,
                                                 redirect_stderr=False) as progress:
            warnings.simplefilter("ignore")
            timings = run_bench(impls, spec, args.batch, dtypes, seed=args.seed, min_time=args.min_time,
                                min_samples=args.min_samples, max_step=args.max_step, progress=progress)
    finally:
        running.close(impls)
    timings += [Timing(running.display_name(impl), dtype, batch, error=f"{verdict.value}: {message}")
                for impl, verdict, message in failures for dtype in dtypes for batch in args.batch]
    print_table(timings, console)
    console.print(f"{'-'.join(map(str, spec.sizes))} {spec.loss}; {args.threads} thread(s) per pool")
    for t in timings:
        if t.error:
            console.print(printable(f"{t.implementation} {t.dtype} batch {t.batch}: ERROR: {t.error}"), style="red", markup=False,
                          highlight=False, soft_wrap=True)
    unmeasured = [impl.name for impl in impls if not any(t.implementation == impl.name and t.median is not None for t in timings)]
    reason = f"nothing measured for {', '.join(unmeasured)}" if unmeasured else ""
    ok = not reason and not any(t.error for t in timings)
    if args.json:
        write_json(timings, args.json, spec=spec, threads=args.threads, ok=ok, reason=reason)
    if args.plot:
        plot(timings, args.plot, spec=spec)
    if reason:
        print(f"backprop-harness: {printable(reason)}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
