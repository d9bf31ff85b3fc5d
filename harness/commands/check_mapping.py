"""``backprop-harness check --mapping module:attr`` and ``check --op NAME``: every
mapping check on the mapping's sample cases (or on one case file), reported like the
MLP's. An operator is checked for every provider that offers it (plug-ins included),
or for those ``--provider`` names."""

from __future__ import annotations

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError

# MLP-only arguments, and what a mapping takes instead
_NOT_FOR_MAPPINGS = {"impl": "--impl", "sizes": "--sizes", "activations": "--activations", "loss": "--loss",
                     "batch": "--batch", "kinks": "--kinks", "logit_scale": "--logit-scale", "isolate": "--isolate",
                     "save_case": "--save-case", "device": "--device"}


def add_arguments(parser) -> None:
    g = parser.add_argument_group("check any mapping (harness.Mapping) instead of an MLP implementation")
    g.add_argument("--mapping", action="append", metavar="module:attr",
                   help="a harness.Mapping, or a function of no arguments returning one (repeatable)")
    g.add_argument("--size", type=_size, metavar="N", help="one random case with about N elements in the first input")
    g.add_argument("--second-order", action="store_true", help="also check the backward of the backward")
    g.add_argument("--op", action="append", metavar="NAME",
                   help="an operator (backprop-harness ops), checked for every provider offering it (repeatable)")
    g.add_argument("--provider", action="append", metavar="NAME",
                   help="with --op: only this provider (repeatable); one that cannot run here then FAILS")


def _size(text) -> int:
    from harness.commands.options import positive_int

    return positive_int(text)


def run(args) -> int:
    from harness.checks.mapping_trial import PROBES
    from harness.commands.check_report import Run, conclude, make_console, print_report
    from harness.core.mapping_cases import load_mapping_case
    from harness.core.results import CheckResult

    given = [flag for attr, flag in _NOT_FOR_MAPPINGS.items() if getattr(args, attr, None)]
    if given:
        raise UsageError(f"{given[0]} applies to MLP implementations, not to {'--mapping' if args.mapping else '--op'}")
    if args.case_file and args.size:
        raise UsageError("--case-file runs exactly that case; --size draws a new one: give one or the other")
    if args.size:
        from harness.core.memory import mapping_check_bytes, require

        require(mapping_check_bytes(args.size), f"--size {args.size}")  # before anything is drawn
    options.checked_outputs(args)
    if args.provider and not args.op:
        raise UsageError("--provider chooses who computes an --op; give --op NAME")
    refs = list(dict.fromkeys(args.mapping or ()))
    for ref in refs:
        if not isinstance(ref, str) or ":" not in ref:
            raise UsageError(f"--mapping {ref!r}: expected module:attr naming a harness.Mapping")
    targets, unavailable = [({"mapping": ref}, ref) for ref in refs], []
    for op_name in dict.fromkeys(args.op or ()):
        found, missing = operator_targets(op_name, args.provider)
        targets += found
        unavailable += missing
    case = load_mapping_case(args.case_file) if args.case_file else None
    if case is not None and args.dtype and args.dtype != case.dtype:
        raise UsageError(f"--dtype {args.dtype}: the case file's float inputs are {case.dtype}; a case file runs in its own dtype")
    runs = [Run(name, "-", [CheckResult("applicable", name, "-", verdict, why)], note=why)
            for name, verdict, why in unavailable]
    probes = args.probes or PROBES
    if args.in_process:
        checked, names = _checked_here(targets, args, case, probes)
    else:  # each mapping in a worker of its own, as an executor task: -j here, or on Dask (--scheduler;
        # the worker starts where the task runs, so a --case-file must be at the same path there)
        checked, names, _ = checked_in_workers(targets, args, probes)
    runs += checked
    console = make_console()
    print_report(runs, console, detail=args.detail or case is not None)
    asked_for = names + [name for name, _, _ in unavailable]
    return EXIT_OK if conclude(runs, asked_for, args.json) else EXIT_FAILED


def operator_targets(op_name: str, chosen=None):
    """``[(target, label)]`` for ``op_name`` and every provider offering it (or the
    ``chosen`` ones), and ``[(name, verdict, why)]`` for those that cannot run here: SKIP
    for one only discovered, FAIL for one chosen. An unknown operator or provider, or
    one chosen that does not offer the operator, is a usage error. No provider's
    factory runs here: the worker (or ``--in-process``) makes the mappings."""
    from harness import ops
    from harness.core.results import Verdict

    ops.operator(op_name)  # ValueError naming the known operators
    names = list(dict.fromkeys(chosen)) if chosen else ops.providers_of(op_name)
    found, missing = [], []
    for name in names:
        provider = ops.provider(name)
        if op_name not in provider.operators:
            raise UsageError(f"--provider {name}: it does not offer operator {op_name!r} "
                             f"(providers of {op_name}: {', '.join(ops.providers_of(op_name))})")
        why = provider.available()
        if why:
            missing.append((f"{op_name}[{name}]", Verdict.FAIL if chosen else Verdict.SKIP, f"cannot run here: {why}"))
            continue
        found.append(({"op": op_name, "provider": name}, f"{op_name}[{name}]"))
    return found, missing


def checked_in_workers(targets, args, probes, repro=None):
    """``(runs, names, found)``: ``targets`` (``[(target, label)]``, see
    ``harness.executors.mapping_worker``) checked as executor tasks; ``found``: what a
    model's localisation found, one line per failed case; ``repro(label, dtype)``: the
    reproduce line to give every result of that target's cases in ``dtype`` (a
    mapping's own otherwise)."""
    from harness.commands.check_report import Run
    from harness.executors.engine import run_tasks
    from harness.executors.mapping_worker import mapping_task, run_mapping_task
    from harness.executors.tasks import result_from_dict
    from harness.workers.remote import DEFAULT_TIMEOUT

    select = {"dtype": args.dtype, "seed": args.seed, "size": getattr(args, "size", None),
              "case_file": str(args.case_file) if getattr(args, "case_file", None) else None}
    tasks = [mapping_task(target, label, timeout=args.timeout or DEFAULT_TIMEOUT, select=select, probes=probes,
                          second_order=bool(getattr(args, "second_order", False))) for target, label in targets]
    try:
        # locally the tasks run on -j threads of the harness (each only waits for its worker)
        with options.engine(args, lending=not args.scheduler) as engine:
            done = run_tasks(engine, run_mapping_task, tasks, [label for _, label in targets])
    except ValueError as exc:  # a module:attr that names no mapping: the user's input
        raise UsageError(str(exc)) from None
    runs = []
    for (_, label), d in zip(targets, done):
        for r in d["runs"]:
            results = [result_from_dict(x) for x in r["results"]]
            if repro is not None:
                for result in results:
                    result.repro = repro(label, r.get("dtype"))
            runs.append(Run(r.get("impl", d["impl"]), r["case"], results, note=r["note"]))
    return runs, [d["impl"] for d in done], [line for d in done for line in d.get("found", ())]


def _checked_here(targets, args, case, probes):
    """``--in-process``: every mapping loaded and checked in this process (debugging,
    profiling); one that exits or hangs takes the harness with it."""
    from harness import ops
    from harness.checks.mapping_runner import check_mapping, mapping_cases
    from harness.commands.check_report import Run
    from harness.core.mapping import load_mapping
    from harness.core.results import CheckResult, Verdict

    runs, names = [], []
    for target, label in targets:
        if "mapping" in target:
            mapping = load_mapping(target["mapping"])
        else:
            try:
                mapping = ops.mapping(target["op"], target["provider"])
            except Exception as exc:  # a plug-in's factory that raises: its failure, not the run's
                runs.append(Run(label, "-", [CheckResult("applicable", label, "-", Verdict.ERROR,
                                                         f"its factory raised {type(exc).__name__}: {exc}")]))
                names.append(label)
                continue
        names.append(mapping.name)
        if case is not None:
            if args.seed:
                case.seed = args.seed  # the seed draws the cotangents and probes
            runs.append(Run(mapping.name, case.describe(), check_mapping(mapping, case, probes=probes,
                                                                          second_order=args.second_order)))
            continue
        for dtype, item, why in mapping_cases(mapping, args.dtype, args.seed, args.size):
            if item is None:
                run = Run(mapping.name, dtype, note=why)
                run.results.append(CheckResult("applicable", mapping.name, dtype, Verdict.FAIL, f"asked for, but {why}"))
                runs.append(run)
                continue
            runs.append(Run(mapping.name, item.describe(), check_mapping(mapping, item, probes=probes,
                                                                          second_order=args.second_order)))
    return runs, names
