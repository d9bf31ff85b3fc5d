"""``backprop-harness check``: contracts, gradients against the oracle, probes and
properties for every implementation asked for, on one case or the default battery."""

from __future__ import annotations

import argparse
import shlex
import threading

from harness.commands import check_mapping, check_network, options
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
                   help="random directional probes per case (default 4; 5 for --mapping, --op and --model)")
    p.add_argument("--strict-determinism", action="store_true",
                   help="demand bitwise-equal answers to identical calls (by default a difference within rounding "
                        "passes, with a note)")
    p.add_argument("--save-case", metavar="FILE.npz",
                   help="write the selected case to FILE.npz (one case only; an existing file only if the harness wrote it)")
    p.add_argument("--json", metavar="FILE", help="write the whole report as JSON (strict: NaN and infinities as null)")
    p.add_argument("--detail", action="store_true", help="print the per-tensor table of every run")
    options.add_workers(p, jobs=True)
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                   help="run the implementation x case lanes (which otherwise go to -j local pool processes) on Dask, "
                        "the same tasks: a scheduler's address, or 'local' for a cluster on this machine "
                        "(pip install 'backprop-harness[dask]')")
    p.add_argument("--isolate", action="store_true",
                   help="what every run does now: each implementation runs in a worker process (kept for old scripts)")
    check_mapping.add_arguments(p)
    check_network.add_arguments(p)
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

    from harness.checks import planner
    from harness.commands import running
    from harness.commands.check_report import conclude, make_console, print_report
    from harness.core.case_files import save_case
    from harness.core.memory import check_bytes, require

    if args.model:
        return check_network.run(args)
    if args.mapping or args.op or args.provider:
        if args.scheduler and args.in_process:
            raise UsageError("--scheduler and --in-process contradict each other (tasks run their mappings in workers)")
        return check_mapping.run(args)
    if args.second_order or args.size:
        raise UsageError(f"{'--second-order' if args.second_order else '--size'} applies to --mapping only")
    # Every input is checked before any work: options, output paths, the case, the
    # implementations and their devices.
    where = running.placement(args, jobs=True)
    if args.scheduler and args.in_process:
        raise UsageError("--scheduler and --in-process contradict each other (tasks run their implementations in workers)")
    if args.save_case and not (args.case_file or args.sizes or args.activations or args.loss or args.batch or args.kinks
                               or args.logit_scale):
        raise UsageError("--save-case needs one selected case (--sizes ... or --case-file)")
    options.checked_outputs(args)
    case = selected_case(args)
    if case is not None and args.case_file:
        require(check_bytes(case.spec, case.batch), f"checking the case in {args.case_file}")
    impls, named = running.select(args.impl, where, threads=_worker_threads(where))
    console = make_console()
    try:
        impls, failures = running.start(impls, where)  # each loads in its worker: what it declares is known now
        options.refuse_undeclared_device(impls, named, args.device)
        if args.save_case:
            save_case(case, args.save_case)
        plan = planner.plan(impls, named=named, case=case, dtypes=[args.dtype] if args.dtype else None, seed=args.seed,
                            device=args.device)
        runs = [_could_not_start(impl, verdict, message) for impl, verdict, message in failures]
        runs += _run_plan(plan, args, where, console)
    finally:
        running.close(impls)
    print_report(runs, console, detail=args.detail or case is not None)
    return EXIT_OK if conclude(runs, [impl.name for impl in impls], args.json) else EXIT_FAILED


def _could_not_start(impl, verdict, message):
    from harness.commands.check_report import Run
    from harness.commands.running import display_name
    from harness.core.results import CheckResult

    name = display_name(impl)
    return Run(name, "-", [CheckResult("load", name, "-", verdict, message,
                                       repro=f"backprop-harness check --impl {shlex.quote(impl.command_line_name())}")])


def _run_plan(plan, args, where, console):
    """Every planned run (results in the planned order): as lane tasks through the
    executor, or, ``--in-process``, one after another in this process."""
    from harness.commands.check_report import Run
    from harness.core.results import CheckResult, Verdict

    runs = [None] * len(plan)
    for index, item in enumerate(plan):
        if item.case is None:
            runs[index] = Run(item.impl.name, item.case_label, note=item.skip)
            if item.failed:  # asked for by name: that is a failure, not a skip
                runs[index].results.append(CheckResult("available", item.impl.name, "-", Verdict.FAIL,
                                                       f"named explicitly but {item.skip}"))
    numbered = [(index, item) for index, item in enumerate(plan) if item.case is not None]
    done = _run_in_process(numbered, args, console) if where.in_process else _run_as_tasks(numbered, args, where, console)
    for index, run in done.items():
        runs[index] = run
    return runs


def _progress(console):
    from rich.progress import Progress

    # the plug-ins' own output goes straight through, never held by the progress display
    return Progress(console=console, transient=True, redirect_stdout=False, redirect_stderr=False)


def _run_in_process(numbered, args, console) -> dict:
    """``--in-process``: the implementations live in this process, so nothing can run
    them elsewhere: no executor, one run after another."""
    from harness.checks.runner import run_checks
    from harness.commands.check_report import Run

    done = {}
    with _progress(console) as progress:
        bar = progress.add_task("checking", total=len(numbered))
        for index, item in numbered:
            results = run_checks(item.impl, item.case, device=args.device, probes=args.probes or 4, probe_seed=args.seed,
                                 strict_determinism=args.strict_determinism)
            done[index] = Run(item.impl.name, item.case_label, results)
            progress.advance(bar)
    return done


def _run_as_tasks(numbered, args, where, console) -> dict:
    """The planned runs as plain lane tasks through the executor, the same tasks
    wherever they run. A lane is an implementation's cases, or those of one dtype for
    one that compiles per shape, all on one worker (a compiled step is compiled once
    per lane, not per case). On Dask (``--scheduler``) a task starts its worker where
    it runs; locally (``-j`` threads) the harness lends it a live worker: the one
    that planned it, or a clone when that one is busy."""
    from harness.executors.engine import run_tasks
    from harness.executors.tasks import CheckTask, run_check_task, worker_spec

    lanes, after = _lanes(numbered)
    tasks = [CheckTask(worker_spec(lane[0][1].impl), cases=tuple(item.case for _, item in lane), seed=args.seed,
                       probes=args.probes or 4, strict_determinism=args.strict_determinism, device=args.device,
                       timeout=where.timeout, threads=_worker_threads(where), close_with_judged=False) for lane in lanes]
    lend, clones = _lending({id(task): lane[0][1].impl for task, lane in zip(tasks, lanes)})
    try:
        with options.engine(args, lending=not args.scheduler) as engine, _progress(console) as progress:
            bar = progress.add_task("checking", total=len(numbered))
            results = run_tasks(engine, run_check_task if args.scheduler else lend, tasks,
                                [lane[0][1].impl.name for lane in lanes], after=after,
                                on_done=lambda index, _: progress.advance(bar, len(lanes[index])))
    finally:
        for clone in clones:
            clone.close()
    return {index: _run_from(item, task_runs) for lane, result in zip(lanes, results)
            for (index, item), task_runs in zip(lane, _per_case(result, len(lane)))}


def _lending(impl_of_task: dict):
    """``(run, clones)``: ``run(task)`` checks a lane task on a live worker of its
    implementation -- an idle one, else a new clone (closed by the caller) -- and
    gives it back when done."""
    from harness.executors.tasks import check_on

    lock, clones = threading.Lock(), []
    idle = {id(impl): [impl] for impl in impl_of_task.values()}

    def run(task) -> dict:
        impl = impl_of_task[id(task)]
        with lock:
            worker = idle[id(impl)].pop() if idle[id(impl)] else None
            if worker is None:
                worker = impl.clone()
                clones.append(worker)
        try:
            return check_on(worker, task)
        finally:
            with lock:
                idle[id(impl)].append(worker)

    return run, clones


def _worker_threads(where) -> int | None:
    from harness.workers.pool import default_jobs

    # one thread each when the workers run side by side, so they do not fight for the cores
    return max(1, default_jobs() // where.jobs) if where.jobs > 1 else None


def _per_case(result: dict, n: int) -> list:
    """A task's runs, one per case; a task that stopped before its cases (its worker
    did not start, or the executor lost it) gives its one record to each."""
    runs = result["runs"]
    return runs if len(runs) == n else [runs[0]] * n


def _run_from(item, task_run: dict):
    from harness.commands.check_report import Run
    from harness.executors.tasks import result_from_dict

    return Run(item.impl.name, item.case_label, [result_from_dict(r) for r in task_run["results"]])


COMPILE, COMPILER_START = 3.5, 15.0  # seconds: a network compiled on two cores, a compiler's first start


def _lanes(numbered):
    """``(lanes, after)``: lanes of ``(index, planned run)``, longest first -- one per
    implementation, one per implementation and dtype for one that compiles per shape
    (its compilations then run side by side) -- and for each the lane that must finish
    first (``None``, or the one-case lane that fills the compiler's caches on disk for
    the implementation's other lanes to find)."""
    lanes, costs = {}, {}
    for index, item in numbered:
        caps = item.impl.capabilities
        key = (id(item.impl), item.case.dtype if caps.compiles_per_shape else "")
        lane = lanes.setdefault(key, [])
        # seconds, roughly: a case's checks, its step's size, and a compilation per network
        compiling = caps.compiles_per_shape and all(item.case.spec != i.case.spec for _, i in lane)
        costs[key] = (costs.get(key, COMPILER_START if caps.compiles_per_shape else 0) + 0.3
                      + item.case.spec.multiply_adds(item.case.batch) / 1e7 + (COMPILE if compiling else 0))
        lane.append((index, item))
    keys = sorted(lanes, key=lambda key: -costs[key])
    ordered, after, warming = [], [], {}
    for key in keys:
        lane, impl = lanes[key], key[0]
        compiles = lane[0][1].impl.capabilities.compiles_per_shape
        if compiles and impl not in warming and sum(k[0] == impl for k in keys) > 1:
            # its first case alone first: the compiler's one-time start (seconds) is then
            # paid once, and its other lanes start as soon as that case is done
            warming[impl] = len(ordered)
            ordered.append(lane[:1])
            after.append(None)
            lane = lane[1:]
            if not lane:
                continue
        ordered.append(lane)
        after.append(warming.get(impl) if compiles else None)
    return ordered, after
