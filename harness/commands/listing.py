"""``backprop-harness list``: every implementation, available or not, and its capabilities.

Each is loaded in a worker process (as ``check`` runs it), so a plug-in that exits
or hangs while loading is listed as such; ``--in-process`` loads them here."""

from __future__ import annotations

import warnings

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser("list", help="every implementation, available or not, and its capabilities")
    options.add_workers(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from harness.commands import running
    from harness.commands.check_report import make_console
    from harness.core.protocol import availability
    from harness.core.registry import load_failures
    from harness.core.results import printable, shown
    from harness.workers.pool import default_jobs

    table = Table(title="implementations")
    for col in ("name", "available", "activations", "losses", "dtypes", "devices", "description"):
        table.add_column(col, overflow="fold")
    where = running.placement(args)
    where.jobs, where.everything = default_jobs(), True
    impls, _ = running.select(None, where)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failures = [(name, f"entry point failed to load: {reason}") for name, reason in load_failures().items()] \
            if where.in_process else []
    broken = []
    try:
        impls, broken = running.start(impls, where)
        broken = [(running.display_name(impl), verdict.value, message) for impl, verdict, message in broken]
        failures += [(name, f"{verdict} (below)") for name, verdict, _ in broken]
        for impl in impls:
            reason = availability(impl)
            caps = impl.capabilities
            table.add_row(
                shown(impl.name),
                "[green]yes[/]" if reason is None else f"[yellow]no: {shown(reason)}[/]",
                shown(", ".join(sorted(caps.activations))),
                shown(", ".join(sorted(caps.losses))),
                shown(", ".join(sorted(caps.dtypes))),
                shown(", ".join(caps.devices)),
                shown(impl.description),
            )
    finally:
        running.close(impls)
    for name, reason in failures:
        table.add_row(shown(name), f"[red]no: {shown(reason)}[/]", "", "", "", "", "")
    console = make_console()
    console.print(table)
    for name, verdict, message in broken:
        console.print(printable(f"{name}: {verdict}: {message}"), markup=False, highlight=False)
    return EXIT_FAILED if broken else EXIT_OK
