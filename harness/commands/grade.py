"""``backprop-harness grade DIR``: check every submission in a folder, each in
isolation -- its own task, its own worker process under a time limit per call and a
memory limit -- and write a gradebook (terminal table, CSV, JSON, HTML).

A submission that crashes, hangs, floods its output or exhausts its memory costs
its own row only. Tasks go through the executor: local pool processes (``-j N``)
or Dask (``--scheduler``)."""

from __future__ import annotations

import argparse

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError

DEFAULT_TIMEOUT = 60.0  # seconds per call into a submission's worker
DEFAULT_TIME_LIMIT = 900.0  # seconds for a whole submission: a slow one cannot take the class's evening
DEFAULT_MEMORY_MIB = 4096  # address space: numpy and a battery case fit; torch's import too


def register(subparsers) -> None:
    p = subparsers.add_parser("grade", help="check every submission in a folder and write a gradebook")
    p.add_argument("folder", metavar="DIR",
                   help="a folder of submissions: NAME.py, packages, or folders with worker.cmd (README: grade)")
    p.add_argument("--out", default="gradebook", metavar="FOLDER",
                   help="where gradebook.{json,csv,html} go (default ./gradebook; made if missing)")
    p.add_argument("--entry", default="backprop", metavar="NAME",
                   help="the attribute each Python submission exposes: a function f(spec, params, x, y) or a class "
                        "(default backprop)")
    g = p.add_argument_group("select one case (default: the built-in battery)")
    g.add_argument("--sizes", help=f"layer widths, e.g. {options.DEFAULT_SIZES}")
    g.add_argument("--activations", help="one per layer, or one for all: relu,identity")
    options.add_loss(g)
    g.add_argument("--batch", type=options.positive_int, help="batch size (default 64 for one case)")
    g.add_argument("--case-file", metavar="FILE.npz", help="run exactly the case saved in FILE.npz")
    options.add_dtype(g, help="default: every dtype each submission declares")
    options.add_seed(g, "parameters, batch and probes")
    p.add_argument("--probes", type=options.probes, default=4, help="random directional probes per case (default 4)")
    p.add_argument("--timeout", type=options.seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"time limit for each call into a submission's worker (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--time-limit", type=options.seconds, default=DEFAULT_TIME_LIMIT, metavar="SECONDS",
                   help=f"time for all of a submission's cases; those left when it runs out are TIMEOUT "
                        f"(default {DEFAULT_TIME_LIMIT:g})")
    p.add_argument("--memory-limit", type=options.positive_int, default=DEFAULT_MEMORY_MIB, metavar="MIB",
                   help=f"address space of each submission's worker, in MiB (RLIMIT_AS; default {DEFAULT_MEMORY_MIB})")
    options.add_executor(p)
    p.set_defaults(func=run)


def tasks_for(submissions, args, case=None) -> list:
    """One plain task per valid submission."""
    from harness.executors.tasks import CheckTask

    return [CheckTask(s.worker, cases=None if case is None else (case,), dtypes=(args.dtype,) if args.dtype else None,
                      seed=args.seed, probes=args.probes, timeout=args.timeout, time_limit=args.time_limit, memory_limit=args.memory_limit << 20)
            for s in submissions]


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from rich.progress import Progress

    from harness.commands import gradebook
    from harness.commands.check import selected_case
    from harness.commands.check_report import make_console
    from harness.commands.submissions import discover
    from harness.core.memory import check_bytes, require
    from harness.executors.engine import run_tasks
    from harness.executors.tasks import run_check_task

    # every input is checked before any work
    submissions = discover(args.folder, args.entry)
    folder, wanted = Path(args.folder).resolve(), Path(os.path.expanduser(args.out)).resolve()
    if wanted == folder or folder in wanted.parents:  # (before check_out_folder makes it)
        raise UsageError(f"--out {args.out}: inside the folder of submissions {args.folder} (the gradebook would "
                         "change a submission, or become one); expected a folder outside it")
    out = gradebook.check_out_folder(args.out)
    args.kinks, args.logit_scale = False, None  # what check's case selection also reads
    case = selected_case(args)
    if case is not None and args.case_file:
        require(check_bytes(case.spec, case.batch), f"checking the case in {args.case_file}")
    valid = [s for s in submissions if s.worker is not None]
    tasks = tasks_for(valid, args, case)
    console = make_console()
    with options.engine(args) as engine, \
            Progress(console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as progress:
        bar = progress.add_task(f"grading {len(valid)} submissions", total=len(tasks))
        results = run_tasks(engine, run_check_task, tasks, [s.name for s in valid],
                            on_done=lambda *_: progress.advance(bar))
    graded = {id(s): result for s, result in zip(valid, results)}  # by submission, never by name
    rows = [gradebook.row(s, graded[id(s)], args.folder) if s.worker is not None else _invalid(s)
            for s in submissions]
    ok = all(r["ok"] for r in rows)
    gradebook.print_table(rows, console)
    paths = gradebook.write(out, rows, source=args.folder, ok=ok)
    passed = sum(r["ok"] for r in rows)
    print(f"{passed} of {len(rows)} submissions passed every check; gradebook: {', '.join(paths)}", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _invalid(submission) -> dict:
    from harness.core.results import Verdict

    message = submission.problem
    return {"submission": submission.name, "kind": submission.kind, "impl": "", "verdict": Verdict.ERROR.value,
            "ok": False, "passed": 0, "judged": 0, "checks": {},
            "first_failure": {"check": "submission", "case": "-", "verdict": Verdict.ERROR.value, "message": message,
                              "hint": "", "repro": ""},
            "stderr": "", "runs": []}
