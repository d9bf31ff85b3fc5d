"""``backprop-harness check``: contracts, gradients against the oracle, probes and
properties for every implementation asked for, on one case or the default battery."""

from __future__ import annotations

import argparse

from harness.commands import check_mapping, options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="check gradients, contracts and properties")
    options.add_impl(p)
    g = p.add_argument_group("select one case (default: the built-in battery)")
    g.add_argument("--sizes", help=f"layer widths, e.g. {options.DEFAULT_SIZES}")
    g.add_argument("--activations", help="one per layer, or one for all: relu,identity")
    options.add_loss(g)
    g.add_argument("--batch", type=options.positive_int, help="batch size (default 64 for one case)")
    options.add_dtype(g, help="default: every dtype each implementation supports")
    options.add_seed(g, "parameters, batch and probes")
    g.add_argument("--kinks", action="store_true", help="place first-layer pre-activations exactly on 0")
    g.add_argument("--logit-scale", type=options.positive_float, help="multiply the last layer (large logits)")
    g.add_argument("--case-file", metavar="FILE.npz", help="run exactly the case saved in FILE.npz")
    options.add_device(p)
    p.add_argument("--probes", type=options.probes, default=None,
                   help="random directional probes per case (default 4; 6 for a --mapping)")
    p.add_argument("--strict-determinism", action="store_true",
                   help="demand bitwise-equal answers to identical calls (by default a difference within rounding "
                        "passes, with a note)")
    p.add_argument("--save-case", metavar="FILE.npz",
                   help="write the selected case to FILE.npz (one case only; an existing file only if the harness wrote it)")
    p.add_argument("--json", metavar="FILE", help="write the whole report as JSON (strict: NaN and infinities as null)")
    p.add_argument("--detail", action="store_true", help="print the per-tensor table of every run")
    p.add_argument("--isolate", action="store_true",
                   help="run each implementation/case in a child interpreter: a raise, hang or crash is reported "
                        "as ERROR, TIMEOUT or CRASHED and the run goes on")
    p.add_argument("--timeout", type=options.seconds, metavar="SECONDS",
                   help="with --isolate: time limit per implementation and case (default 300)")
    check_mapping.add_arguments(p)
    p.set_defaults(func=run)


def selected_case(args, dtype_default="float64"):
    """The one case the case arguments select, or ``None`` for the battery."""
    from harness.core.case_files import load_case
    from harness.core.cases import make_case
    from harness.core.memory import check_bytes, require

    if args.case_file:
        if args.sizes or args.activations or args.loss or args.batch or args.kinks or args.logit_scale:
            raise UsageError("--case-file replaces --sizes/--activations/--loss/--batch/--kinks/--logit-scale; "
                             "give one or the other")
        case = load_case(args.case_file)
        if args.dtype and args.dtype != case.dtype:
            raise UsageError(f"--dtype {args.dtype}: the case file's arrays are {case.dtype}; a case file runs in its own dtype")
        return case
    if not (args.sizes or args.activations or args.loss or args.batch or args.kinks or args.logit_scale):
        return None
    spec = options.network(args.sizes or options.DEFAULT_SIZES, args.activations, args.loss)
    batch = args.batch or 64
    require(check_bytes(spec, batch), f"checking {spec.describe()} at batch {batch}")  # before anything is drawn
    return make_case(spec, batch, args.dtype or dtype_default, args.seed, on_kinks=args.kinks, logit_scale=args.logit_scale)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.progress import Progress

    from harness.checks import planner
    from harness.checks.runner import run_checks
    from harness.commands.check_report import Run, make_console, nothing_judged, print_report, write_json
    from harness.core.case_files import save_case
    from harness.core.memory import check_bytes, require
    from harness.core.results import CheckResult, Verdict

    if args.mapping:
        return check_mapping.run(args)
    if args.second_order or args.size:
        raise UsageError(f"{'--second-order' if args.second_order else '--size'} applies to --mapping only")
    # Every input is checked before any work: options, output paths, the case, the
    # implementations and their devices.
    if args.timeout and not args.isolate:
        raise UsageError("--timeout needs --isolate (a hang can only be cut short in a child interpreter)")
    if args.save_case and not (args.case_file or args.sizes or args.activations or args.loss or args.batch or args.kinks
                               or args.logit_scale):
        raise UsageError("--save-case needs one selected case (--sizes ... or --case-file)")
    options.checked_outputs(args)
    case = selected_case(args)
    if case is not None and args.case_file:
        require(check_bytes(case.spec, case.batch), f"checking the case in {args.case_file}")
    impls, named = options.implementations(args.impl)
    options.refuse_undeclared_device(impls, named, args.device)
    refs = {id(impl): ref for impl, ref in zip(impls, args.impl or [])}
    if args.save_case:
        save_case(case, args.save_case)
    plan = planner.plan(impls, named=named, case=case, dtypes=[args.dtype] if args.dtype else None, seed=args.seed,
                        device=args.device)
    console = make_console()
    runs = []
    # the plug-ins' own output goes straight through, never held by the progress display
    with Progress(console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as progress:
        task = progress.add_task("checking", total=len(plan))
        for item in plan:
            if item.case is None:
                run = Run(item.impl.name, item.case_label, note=item.skip)
                if item.failed:  # asked for by name: that is a failure, not a skip
                    run.results.append(CheckResult("available", item.impl.name, "-", Verdict.FAIL,
                                                   f"named explicitly but {item.skip}"))
                runs.append(run)
                continue
            progress.update(task, description=f"{item.impl.name}: {item.case_label}")
            if args.isolate:
                from harness.checks.isolation import DEFAULT_TIMEOUT, run_checks_isolated

                ref = refs.get(id(item.impl), item.impl)  # the child resolves the text the user gave
                results = run_checks_isolated(ref, item.case, device=args.device, probes=args.probes or 4, probe_seed=args.seed,
                                              timeout=args.timeout or DEFAULT_TIMEOUT,
                                              strict_determinism=args.strict_determinism)
            else:
                results = run_checks(item.impl, item.case, device=args.device, probes=args.probes or 4, probe_seed=args.seed,
                                     strict_determinism=args.strict_determinism)
            runs.append(Run(item.impl.name, item.case_label, results))
            progress.advance(task)
    print_report(runs, console, detail=args.detail or case is not None)
    reason = nothing_judged(runs, [impl.name for impl in impls])
    ok = not reason and all(r.ok for r in runs)
    if args.json:
        write_json(runs, args.json, ok=ok, reason=reason)
    if reason:
        print(f"backprop-harness: {reason}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
