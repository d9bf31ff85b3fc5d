"""The ``backprop-harness`` command: ``list``, ``check`` (and the subcommands that
register themselves in ``COMMANDS``). Each subcommand declares its arguments and
calls a plain function; a user error becomes one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from harness import train_command
from harness.arguments import positive_int
from harness.registry import ImplementationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + traceback
        raise UsageError(message)


def _add_case_arguments(p):
    g = p.add_argument_group("select one case (default: the built-in battery)")
    g.add_argument("--sizes", help="layer widths, e.g. 784,500,10")
    g.add_argument("--activations", help="one per layer, or one for all: relu,identity")
    g.add_argument("--loss", choices=["cross_entropy", "mse"], help="default cross_entropy")
    g.add_argument("--batch", type=positive_int, help="batch size (default 64 for one case)")
    g.add_argument("--dtype", choices=["float32", "float64"], help="default: every dtype each implementation supports")
    g.add_argument("--seed", type=int, default=0, help="seed for parameters, batch and probes (default 0)")
    g.add_argument("--kinks", action="store_true", help="place first-layer pre-activations exactly on 0")
    g.add_argument("--logit-scale", type=float, help="multiply the last layer (large logits)")
    g.add_argument("--case-file", metavar="FILE.npz", help="run exactly the case saved in FILE.npz")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="backprop-harness", description="Check backprop implementations' gradients and speed.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="every implementation, available or not, and its capabilities")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="check gradients, contracts and properties")
    p.add_argument("--impl", action="append", metavar="NAME|module:attr", help="repeatable; default every available one")
    _add_case_arguments(p)
    p.add_argument("--device", help="device to run on (default: the implementation's own)")
    p.add_argument("--probes", type=int, default=4, help="random directional probes per case (default 4)")
    p.add_argument("--save-case", metavar="FILE.npz", help="write the selected case to FILE.npz (one case only)")
    p.add_argument("--json", metavar="FILE", help="write the whole report as JSON")
    p.add_argument("--detail", action="store_true", help="print the per-tensor table of every run")
    p.add_argument("--isolate", action="store_true",
                   help="run each implementation/case in a child interpreter: a raise, hang or crash is reported "
                        "as ERROR, TIMEOUT or CRASHED and the run goes on")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="with --isolate: time limit per implementation and case (default 300)")
    p.set_defaults(func=cmd_check)

    for register in COMMANDS:
        register(sub)
    return parser


# Other modules append a function(subparsers) that adds their subcommand.
COMMANDS: list = [train_command.register]

from harness.bench import register as _register_bench  # noqa: E402  (bench imports cli lazily)

COMMANDS.append(_register_bench)


def main(argv=None) -> int:
    # `--impl module:attr` should find modules in the current directory, as
    # `python -m harness` would, also when run through the console script.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except (UsageError, ImplementationError, ValueError, FileNotFoundError) as exc:
        print(f"backprop-harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("backprop-harness: interrupted", file=sys.stderr)
        return 130


# --- list ------------------------------------------------------------------------


def cmd_list(args) -> int:
    from rich.table import Table

    from harness.registry import implementations, load_failures
    from harness.report import make_console

    table = Table(title="implementations")
    for col in ("name", "available", "activations", "losses", "dtypes", "devices", "description"):
        table.add_column(col, overflow="fold")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry = implementations()
        failures = load_failures()
    for name, impl in registry.items():
        reason = impl.unavailable_reason()
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


# --- check -----------------------------------------------------------------------


def selected_case(args, dtype_default="float64"):
    """The one case the case arguments select, or ``None`` for the battery."""
    from harness.cases import load_case, make_case
    from harness.spec import SEED_SPEC, NetworkSpec

    if args.case_file:
        if args.sizes or args.activations or args.loss or args.batch or args.kinks:
            raise UsageError("--case-file replaces --sizes/--activations/--loss/--batch/--kinks; give one or the other")
        case = load_case(args.case_file)
        if args.dtype and args.dtype != case.dtype:
            raise UsageError(f"--dtype {args.dtype}: the case file's arrays are {case.dtype}; a case file runs in its own dtype")
        return case
    if not (args.sizes or args.activations or args.loss or args.batch or args.kinks or args.logit_scale):
        return None
    sizes = args.sizes or ",".join(map(str, SEED_SPEC.sizes))
    n_layers = sizes.count(",")
    activations = args.activations or ",".join(["relu"] * (n_layers - 1) + ["identity"])
    spec = NetworkSpec.parse(sizes, activations, args.loss or "cross_entropy")
    return make_case(spec, args.batch or 64, args.dtype or dtype_default, args.seed,
                     on_kinks=args.kinks, logit_scale=args.logit_scale)


def resolve_impls(names):
    """Implementations named on the command line (all must exist), or every available one."""
    from harness.registry import available, resolve

    if names:
        return [resolve(n) for n in names], True
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return list(available().values()), False


def cmd_check(args) -> int:
    from rich.progress import Progress

    from harness import battery
    from harness.cases import save_case
    from harness.checks import run_checks
    from harness.report import Run, make_console, print_report, write_json

    if args.timeout and not args.isolate:
        raise UsageError("--timeout needs --isolate (a hang can only be cut short in a child interpreter)")
    case = selected_case(args)
    if args.save_case:
        if case is None:
            raise UsageError("--save-case needs one selected case (--sizes ... or --case-file)")
        save_case(case, args.save_case)
    impls, named = resolve_impls(args.impl)
    refs = {id(impl): ref for impl, ref in zip(impls, args.impl or [])}
    console = make_console()
    plan = []  # (impl, case) to run, or a Run that explains why nothing ran
    for impl in impls:
        reason = impl.unavailable_reason(args.device)
        if reason:
            run = Run(impl.name, "-", note=f"unavailable: {reason}")
            if named:  # asked for by name: that is a failure, not a skip
                run.results.append(_unavailable(impl, reason))
            plan.append(run)
            continue
        if case is not None:
            cases = [case]
        else:
            dtypes = [args.dtype] if args.dtype else sorted(impl.capabilities.dtypes, reverse=True)
            cases = [c for d in dtypes if d in impl.capabilities.dtypes for c in battery.default_cases(d, args.seed)]
        for c in cases:
            if case is None and impl.name in battery.SLOW_AT_SEED_SIZE and battery.is_seed_size(c):
                plan.append(Run(impl.name, c.describe(), note="seed size left out: a pure-Python step takes seconds there"))
            else:
                plan.append((impl, c))
    runs = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("checking", total=len(plan))
        for item in plan:
            if isinstance(item, Run):
                runs.append(item)
                continue
            impl, c = item
            progress.update(task, description=f"{impl.name}: {c.describe()}")
            if args.isolate:
                from harness.isolation import DEFAULT_TIMEOUT, run_checks_isolated

                ref = refs.get(id(impl), impl)  # the child resolves the text the user gave
                results = run_checks_isolated(ref, c, device=args.device, probes=args.probes, probe_seed=args.seed,
                                              timeout=args.timeout or DEFAULT_TIMEOUT)
            else:
                results = run_checks(impl, c, device=args.device, probes=args.probes, probe_seed=args.seed)
            runs.append(Run(impl.name, c.describe(), results))
            progress.advance(task)
    print_report(runs, console, detail=args.detail or case is not None)
    if args.json:
        write_json(runs, args.json)
    return EXIT_OK if all(r.ok for r in runs) and any(r.results for r in runs) else EXIT_FAILED


def _unavailable(impl, reason):
    from harness.results import CheckResult, Verdict

    return CheckResult("available", impl.name, "-", Verdict.FAIL, f"named explicitly but unavailable: {reason}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
