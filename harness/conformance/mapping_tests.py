"""Mapping checks as pytest tests: one test per (mapping, check), run over the mapping's
sample cases in every dtype it declares. The engine behind ``pytest --pyargs
harness.conformance --mapping module:attr`` and ``harness.parametrize_with_checks``
given a ``Mapping``. pytest is imported only inside the test bodies."""

from __future__ import annotations

from dataclasses import dataclass

from harness.checks.mapping_runner import MAPPING_CHECKS, mapping_cases, mapping_check_name, run_mapping_check
from harness.checks.mapping_trial import MappingTrial
from harness.core.mapping import Mapping, load_mapping
from harness.core.results import Verdict


class MappingConformanceFailure(AssertionError):
    """A mapping check failed (or the mapping raised) on one of its cases."""


@dataclass
class MappingSubject:
    """A mapping to test, or why there is none (an unloadable ``--mapping``: FAILS)."""

    name: str
    mapping: Mapping | None = None
    problem: str = ""
    worker: object | None = None  # a MappingWorker serving a module:attr (its cases in worker.cases)

    def __str__(self):
        return self.name


def mapping_subject(target, *, in_process: bool = False, timeout: float | None = None) -> MappingSubject:
    """A ``Mapping`` object is tested here (it lives in the caller's process already);
    a ``module:attr`` in a worker process (``harness.executors.mapping_worker``), so that
    one that exits, crashes or hangs fails its tests instead of ending the session --
    with status 0, for ``os._exit(0)`` -- unless ``in_process``."""
    if isinstance(target, Mapping):
        return MappingSubject(target.name, target)
    if not in_process:
        return _subject_in_worker(str(target), timeout)
    try:
        mapping = load_mapping(target)
    except ValueError as exc:
        return MappingSubject(str(target), None, str(exc))
    return MappingSubject(mapping.name, mapping)


def _subject_in_worker(ref: str, timeout: float | None) -> MappingSubject:
    from harness.executors.mapping_worker import LOST, MappingWorker
    from harness.workers.remote import DEFAULT_TIMEOUT

    worker = MappingWorker({"mapping": ref}, ref, timeout=timeout or DEFAULT_TIMEOUT, select={})
    try:
        worker.start()
    except ValueError as exc:
        return MappingSubject(ref, None, str(exc))
    except LOST as exc:
        return MappingSubject(ref, None, f"{_verdict_of(exc)} while loading {ref}: {exc}")
    return MappingSubject(worker.name, None, worker=worker)


def _verdict_of(exc) -> str:
    verdict = getattr(exc, "verdict", None)
    return verdict.value if verdict is not None else "ERROR"


def run_mapping_subject(check, subject: MappingSubject) -> None:
    """The body of one mapping conformance test: fail on the first case where the check
    does not hold (the report names the case file and the command that reruns it);
    skip where it applied to no case."""
    import pytest

    __tracebackhide__ = True
    if subject.problem:
        pytest.fail(subject.problem, pytrace=False)
    applied, skipped = False, []
    for result, why in _results(check, subject):
        if result is None:
            skipped.append(why)
            continue
        if result.verdict is Verdict.SKIP:
            skipped.append(result.message)
        elif not result.ok:
            raise MappingConformanceFailure(result.describe())
        else:
            applied = True
    if not applied:
        pytest.skip(f"{mapping_check_name(check)} applied to none of the cases: {'; '.join(sorted(set(skipped)))}")


def _results(check, subject: MappingSubject):
    """``(result, why not)`` of ``check`` on each of the subject's cases, here or in its worker."""
    import pytest

    if subject.worker is None:
        for _, case, why in mapping_cases(subject.mapping):
            yield (None, why) if case is None else (run_mapping_check(check, MappingTrial(subject.mapping, case)), "")
        return
    from harness.checks.mapping_trial import PROBES
    from harness.executors.mapping_worker import LOST

    worker = subject.worker
    for index, case in enumerate(worker.cases):
        if case["case"] is None:
            yield None, case["why"]
            continue
        try:
            if not worker.alive():
                worker.start()  # an earlier check killed it: a fresh one, same plan
            (result,) = worker.check(index, probes=PROBES, second_order=False, checks=[mapping_check_name(check)])
        except LOST as exc:
            worker.close()
            pytest.fail(f"{_verdict_of(exc)}: {subject.name} on {case['case']}: {exc}", pytrace=False)
        yield result, ""


def mapping_params(targets):
    """pytest params ``(subject, check)`` for every mapping check of every target."""
    import functools

    import pytest

    params = []
    for target in targets:
        subject = mapping_subject(target)
        for check in MAPPING_CHECKS:
            bound = functools.partial(_check_mapping, check)
            bound.__name__ = mapping_check_name(check)
            params.append(pytest.param(subject, bound, id=f"{subject.name}-{mapping_check_name(check)}"))
    return params


def _check_mapping(check, target):
    __tracebackhide__ = True
    run_mapping_subject(check, target if isinstance(target, MappingSubject) else mapping_subject(target))
