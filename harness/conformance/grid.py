"""The conformance grid through the executor: with ``--conformance-jobs N`` or
``--conformance-scheduler ADDR|local``, the (implementation, check) properties the
session collected run as executor tasks when collection ends -- one task per
implementation, its checks on one worker it starts where it runs (a local pool
process or a Dask worker) -- and each pytest item then reports its property's
outcome: passed, skipped with the reason, or failed with the message the property
raised (the report, hypothesis's minimal example, the reproduce line).

Without those options the suite runs as it always has: each item runs its property
in pytest's own process (pytest-xdist's ``-n`` spreads them), with hypothesis's
output and example database where pytest keeps them. A plug-in registered only in
the test session (``register()`` in a conftest) has no worker a task could start:
it runs in pytest's process either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.workers.remote import DEFAULT_TIMEOUT

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class ConformanceTask:
    """Run ``checks`` (their names) as hypothesis properties on ``worker``'s
    implementation, under the hypothesis profile ``profile``; the minimal failing
    cases are saved in ``case_dir`` (a path where the task runs)."""

    worker: object  # harness.executors.tasks.WorkerSpec
    checks: tuple
    profile: str
    case_dir: str
    timeout: float = DEFAULT_TIMEOUT  # seconds per call into the worker
    threads: int | None = 1


def run_conformance_task(task: ConformanceTask) -> dict:
    """``{check name: (outcome, message)}`` for every check of ``task``, run here."""
    import os
    import tempfile

    import pytest
    from hypothesis import settings

    from harness.checks import ALL_CHECKS, check_name
    from harness.conformance.property_tests import CASE_DIR_VARIABLE, ConformanceFailure, property_test
    from harness.core.out_of_process import ImplementationGone, RemoteError
    from harness.core.protocol import ImplementationError
    from harness.executors.tasks import worker_in

    checks = {check_name(check): check for check in ALL_CHECKS}
    os.environ[CASE_DIR_VARIABLE] = task.case_dir  # where check_once saves the minimal case
    outcomes = {}
    with tempfile.TemporaryDirectory(prefix="backprop-conformance-", ignore_cleanup_errors=True) as home:
        impl = worker_in(home, task.worker, timeout=task.timeout, threads=task.threads)
        try:
            try:
                impl.start()
            except (ImplementationGone, RemoteError, ImplementationError) as exc:
                return {name: (FAILED, f"{impl.label}: {exc}") for name in task.checks}
            for name in task.checks:
                try:
                    property_test(checks[name], impl, settings=settings.get_profile(task.profile))()
                    outcomes[name] = (PASSED, "")
                except ConformanceFailure as exc:  # the report, then hypothesis's notes (the minimal example)
                    outcomes[name] = (FAILED, "\n".join([str(exc), *getattr(exc, "__notes__", ())]))
                except pytest.skip.Exception as exc:
                    outcomes[name] = (SKIPPED, str(exc.msg))
        finally:
            impl.close()
    return outcomes


def run_grid(grid: list, *, jobs: int, scheduler: str | None, timeout: float | None) -> None:
    """Run every ``(subject, [check names])`` of ``grid`` as a task and give each
    subject its ``outcomes``; a task the executor lost fails its checks as INFRA_ERROR."""
    from harness.conformance.profiles import active_profile, conformance_settings
    from harness.conformance.property_tests import case_dir
    from harness.executors.engine import open_engine, run_tasks
    from harness.executors.tasks import worker_spec
    from harness.workers.remote import DEFAULT_TIMEOUT

    conformance_settings()  # an unknown profile is refused here, once, not in every task
    tasks = [ConformanceTask(worker_spec(s.impl), tuple(checks), active_profile(), str(case_dir()),
                             timeout=timeout or DEFAULT_TIMEOUT) for s, checks in grid]

    def lost(label, why):
        return {name: (FAILED, f"INFRA_ERROR: {why}") for name in checks_of[label]}

    checks_of = {s.name: checks for s, checks in grid}
    labels = [s.name for s, _ in grid]
    with open_engine(jobs, scheduler) as engine:
        results = run_tasks(engine, run_conformance_task, tasks, labels, lost_as=lost)
    for (s, _), outcomes in zip(grid, results):
        s.outcomes = outcomes
