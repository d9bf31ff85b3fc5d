"""``backprop-harness list``: every implementation, available or not, and its capabilities."""

from __future__ import annotations

import warnings

from harness.commands.errors import EXIT_OK


def register(subparsers) -> None:
    p = subparsers.add_parser("list", help="every implementation, available or not, and its capabilities")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.table import Table

    from harness.commands.check_report import make_console
    from harness.core.protocol import availability
    from harness.core.registry import implementations, load_failures

    table = Table(title="implementations")
    for col in ("name", "available", "activations", "losses", "dtypes", "devices", "description"):
        table.add_column(col, overflow="fold")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = implementations()
        failures = load_failures()
    for name, impl in registry.items():
        reason = availability(impl)
        caps = impl.capabilities
        table.add_row(
            name,
            "[green]yes[/]" if reason is None else f"[yellow]no: {reason}[/]",
            ", ".join(sorted(caps.activations)),
            ", ".join(sorted(caps.losses)),
            ", ".join(sorted(caps.dtypes)),
            ", ".join(caps.devices),
            impl.description,
        )
    for name, reason in failures.items():
        table.add_row(name, f"[red]no: entry point failed to load: {reason}[/]", "", "", "", "", "")
    make_console().print(table)
    return EXIT_OK
