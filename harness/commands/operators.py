"""``backprop-harness ops``: every operator of the database, its inputs (the
non-differentiable ones marked), dtypes and default parameters, and which providers
(implementations) offer it; then the providers, and any plug-in that failed to load."""

from __future__ import annotations

import warnings

from harness.commands.errors import EXIT_FAILED, EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser("ops", help="the operator database: operators, dtypes, non-differentiable inputs, providers")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from harness import ops
    from harness.commands.check_report import make_console
    from harness.core.results import shown
    from harness.ops.registry import load_failures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plug-in that fails to load is listed below instead
        providers = ops.providers()
        failures = load_failures()
    table = Table(title=f"operators ({len(ops.operators())})")
    for col in ("operator", "inputs", "non-differentiable", "dtypes", "params", "providers"):
        table.add_column(col, overflow="fold")
    for name in ops.operators():
        record = ops.operator(name)
        table.add_row(shown(name), shown(", ".join(record.input_names)), shown(", ".join(record.nondifferentiable) or "-"),
                      shown(", ".join(record.dtypes)), shown(", ".join(f"{k}={v}" for k, v in record.params.items()) or "-"),
                      shown(", ".join(ops.providers_of(name))))
    console = make_console()
    console.print(table)
    known = set(ops.operators())
    listing = Table(title="providers")
    for col in ("provider", "available", "operators", "description"):
        listing.add_column(col, overflow="fold")
    for name, provider in providers.items():
        why = provider.available()
        offered = [op for op in provider.operators if op in known]
        unknown = sorted(set(provider.operators) - known)
        listing.add_row(shown(name + (" (plug-in)" if provider.plugin else "")),
                        "[green]yes[/]" if not why else f"[yellow]no: {shown(why)}[/]",
                        f"{len(offered)}" + (f" (unknown, not checked: {shown(', '.join(unknown))})" if unknown else ""),
                        shown(provider.description))
    for name, reason in failures.items():
        listing.add_row(shown(name), f"[red]no: failed to load: {shown(reason)}[/]", "", "")
    console.print(listing)
    return EXIT_FAILED if failures else EXIT_OK
