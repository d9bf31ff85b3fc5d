"""What an executor runs: a task is a plain, picklable description of one
implementation to check -- how to start its worker, the files it needs, the cases,
the limits -- and its result is plain data (``CheckResult`` dicts). No live
implementation object ever crosses to an executor: a task can run in a local pool
process or on a Dask worker on another machine alike.

The task itself runs the implementation in a worker process of its own (the
harness never shares a process with what it judges), under the time limit per call
and the memory limit (RLIMIT_AS) given: a Dask worker cannot kill a running task,
but the task can kill its worker process.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.results import CheckResult, Coordinate, TensorReport, Verdict
from harness.workers.remote import DEFAULT_TIMEOUT

PYTHON, COMMAND = "python", "command"


@dataclass(frozen=True)
class WorkerSpec:
    """How to start an implementation's worker, wherever the task runs.

    ``kind`` PYTHON: ``target`` is what the Python worker loads (a registered name or
    ``module:attr``); COMMAND: ``target`` is a command line speaking the worker
    protocol. ``files`` (relative path -> bytes) are written into a private folder the
    worker runs in, which is also first on its ``sys.path``: a submission travels as
    its bytes, so a task needs no shared disk. ``label`` is how reports name it
    (the ``--impl`` text of the reproduce lines)."""

    kind: str
    target: str
    files: dict = field(default_factory=dict)
    label: str = ""
    executables: tuple = ()  # those of ``files`` to mark executable (a worker program)
    name: str = ""  # the implementation's name in reports; by default what its worker declares


@dataclass(frozen=True)
class CheckTask:
    """Check one implementation: on ``cases`` (``Case`` objects, plain arrays), or, when
    that is ``None``, on the default battery in ``dtypes`` (every declared one when
    ``None``), planned where the task runs."""

    worker: WorkerSpec
    cases: tuple | None = None
    dtypes: tuple | None = None
    seed: int = 0
    probes: int = 4
    strict_determinism: bool = False
    device: str | None = None
    timeout: float = DEFAULT_TIMEOUT  # seconds per call into the worker
    time_limit: float | None = None  # seconds for the whole task; cases past it are TIMEOUT, not run
    memory_limit: int | None = None  # bytes of address space for the worker
    threads: int | None = 1  # BLAS/OpenMP threads in the worker
    judged_by_name: bool = True  # an unavailable implementation is then a FAIL, as when named with --impl
    close_with_judged: bool = True  # a closing INCONCLUSIVE "judged" record when nothing was judged


def run_check_task(task: CheckTask) -> dict:
    """Run ``task`` here: ``{"impl": name, "runs": [{"case", "note", "results"}],
    "stderr": the end of the worker's stderr}``, plain data only. What the
    implementation does -- crash, hang, exhaust memory, flood its output -- is in the
    results; an exception from this function is a fault of the harness or the engine."""
    from harness.core.out_of_process import ImplementationGone, RemoteError
    from harness.core.protocol import ImplementationError

    # a submission may leave what it likes in its folder: it goes, whatever it is
    with tempfile.TemporaryDirectory(prefix="backprop-task-", ignore_cleanup_errors=True) as home:
        impl = worker_in(home, task.worker, timeout=task.timeout, threads=task.threads, memory_limit=task.memory_limit)
        try:
            try:
                impl.start()
            except ImplementationGone as exc:
                return _not_started(impl, exc.verdict, str(exc))
            except (RemoteError, ImplementationError) as exc:
                return _not_started(impl, Verdict.ERROR, str(exc))
            return check_on(impl, task)
        finally:
            impl.close()


def check_on(impl, task: CheckTask) -> dict:
    """``task``'s cases checked on ``impl``, a worker implementation already there (the
    one ``run_check_task`` started, or a live one the harness lends a lane task run in
    its own threads): the same plain result either way."""
    from harness.checks import planner
    from harness.checks.runner import nothing_judged, run_checks

    runs = []
    if task.cases is None:
        plan = planner.plan([impl], named=task.judged_by_name, dtypes=task.dtypes, seed=task.seed, device=task.device)
    else:
        plan = [run for case in task.cases
                for run in planner.plan([impl], named=task.judged_by_name, case=case, device=task.device)]
    deadline = time.monotonic() + task.time_limit if task.time_limit else None
    for item in plan:
        results = []
        left = deadline - time.monotonic() if deadline is not None else None
        if left is not None:  # no call may outlast the task's time
            impl.timeout = max(0.01, min(task.timeout, left))
        if left is not None and left <= 0 and item.case is not None:
            results.append(CheckResult("time_limit", impl.name, item.case_label, Verdict.TIMEOUT,
                                       f"not run: the time limit of {task.time_limit:g} s for all cases ran out"))
        elif item.case is None:
            if item.failed:
                results.append(CheckResult("available", impl.name, item.case_label, Verdict.FAIL,
                                           f"named explicitly but {item.skip}"))
            else:
                results.append(CheckResult("applicable", impl.name, item.case_label, Verdict.SKIP, item.skip))
        else:
            results = run_checks(impl, item.case, device=task.device, probes=task.probes, probe_seed=task.seed,
                                 strict_determinism=task.strict_determinism)
        runs.append({"case": item.case_label, "note": item.skip, "results": [r.to_dict() for r in results]})
    every = [CheckResult(**{**r, "verdict": Verdict(r["verdict"]), "tensors": []}) for run in runs for r in run["results"]]
    reason = nothing_judged(impl.name, every) if task.close_with_judged else None
    if reason:
        runs.append({"case": "-", "note": "", "results": [
            CheckResult("judged", impl.name, "-", Verdict.INCONCLUSIVE, reason).to_dict()]})
    return {"impl": impl.name, "runs": runs, "stderr": impl.stderr_tail()}


def worker_spec(impl) -> WorkerSpec:
    """The description of a started ``WorkerImplementation``'s worker: the Python
    worker's target, or the program's command line (run where the task runs)."""
    import shlex

    from harness.workers.remote import PYTHON_WORKER

    argv = impl.argv
    if len(argv) == 4 and argv[1:3] == ["-m", PYTHON_WORKER]:
        return WorkerSpec(PYTHON, argv[3], label=impl.label, name=impl.name)
    return WorkerSpec(COMMAND, shlex.join(argv), label=impl.label, name=impl.name)


def worker_in(home: str, worker: WorkerSpec, *, timeout: float, threads: int | None, **options):
    """A worker implementation (not started) for ``worker``, run in the folder ``home``
    with its files written there; ``options``: more of ``WorkerImplementation``'s."""
    from harness.workers.remote import WorkerImplementation

    _write_files(home, worker.files, worker.executables)
    return WorkerImplementation(_argv(worker), name=worker.name, label=worker.label or worker.target, timeout=timeout,
                                env=_environment(home, threads), threads=threads, cwd=home, **options)


def _argv(worker: WorkerSpec) -> list[str]:
    import shlex
    import sys

    from harness.workers.remote import PYTHON_WORKER

    if worker.kind == PYTHON:
        return [sys.executable, "-m", PYTHON_WORKER, worker.target]
    if worker.kind == COMMAND:
        return shlex.split(worker.target)
    raise ValueError(f"worker kind {worker.kind!r}: expected {PYTHON!r} or {COMMAND!r}")


def _environment(home: str, threads: int | None) -> dict:
    from harness.workers.remote import python_environment

    env = python_environment(threads)
    env["PYTHONPATH"] = os.pathsep.join([home, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else home
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _write_files(home: str, files: dict, executables=()) -> None:
    root = Path(home).resolve()
    for relative, data in files.items():
        path = (root / relative).resolve()
        if root not in path.parents:  # a description names only paths inside its own folder
            raise ValueError(f"task file {relative!r}: expected a relative path inside the task's folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if relative in executables:
            path.chmod(0o755)


def _not_started(impl, verdict: Verdict, message: str) -> dict:
    result = CheckResult("load", impl.name, "-", verdict, message,
                         repro=f"backprop-harness check --impl {_quoted(impl.command_line_name())}")
    return {"impl": impl.name, "runs": [{"case": "-", "note": "", "results": [result.to_dict()]}],
            "stderr": impl.stderr_tail()}


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)


def result_from_dict(data: dict) -> CheckResult:
    """A ``CheckResult`` back from ``to_dict``'s plain data."""
    tensors = []
    for t in data.get("tensors", []):
        worst = [Coordinate(**{**c, "index": tuple(c["index"]), "bracket": tuple(c["bracket"]) if c.get("bracket") else None})
                 for c in t.get("worst", [])]
        tensors.append(TensorReport(**{**t, "verdict": Verdict(t["verdict"]), "worst": worst}))
    return CheckResult(**{**data, "verdict": Verdict(data["verdict"]), "tensors": tensors})


def infra_result(label: str, message: str) -> dict:
    """The plain result of a task the executor lost: one INFRA_ERROR record."""
    result = CheckResult("executor", label, "-", Verdict.INFRA_ERROR, message)
    return {"impl": label, "runs": [{"case": "-", "note": "", "results": [result.to_dict()]}], "stderr": ""}
