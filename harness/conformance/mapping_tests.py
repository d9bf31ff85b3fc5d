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

    def __str__(self):
        return self.name


def mapping_subject(target) -> MappingSubject:
    if isinstance(target, Mapping):
        return MappingSubject(target.name, target)
    try:
        mapping = load_mapping(target)
    except ValueError as exc:
        return MappingSubject(str(target), None, str(exc))
    return MappingSubject(mapping.name, mapping)


def run_mapping_subject(check, subject: MappingSubject) -> None:
    """The body of one mapping conformance test: fail on the first case where the check
    does not hold (the report names the case file and the command that reruns it);
    skip where it applied to no case."""
    import pytest

    __tracebackhide__ = True
    if subject.problem:
        pytest.fail(subject.problem, pytrace=False)
    applied, skipped = False, []
    for _, case, why in mapping_cases(subject.mapping):
        if case is None:
            skipped.append(why)
            continue
        result = run_mapping_check(check, MappingTrial(subject.mapping, case))
        if result.verdict is Verdict.SKIP:
            skipped.append(result.message)
        elif not result.ok:
            raise MappingConformanceFailure(result.describe())
        else:
            applied = True
    if not applied:
        pytest.skip(f"{mapping_check_name(check)} applied to none of the cases: {'; '.join(sorted(set(skipped)))}")


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
