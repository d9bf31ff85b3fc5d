"""One check as a hypothesis property: for every drawn case, the check passes.

The engine behind both front ends: the test module that ``pytest --pyargs
harness.conformance`` collects, and ``harness.parametrize_with_checks`` in a third
party's own test file. pytest is imported only where a test is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import given, note

from harness.checks import Trial, check_name, run_check
from harness.conformance import strategies
from harness.conformance.profiles import conformance_settings
from harness.core.case_files import save_case
from harness.core.cases import Case
from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.protocol import Implementation, ImplementationError, availability
from harness.core.registry import resolve
from harness.core.results import Verdict

# Where the minimal failing case is written; relative paths are taken from the cwd.
CASE_DIR_VARIABLE = "BACKPROP_HARNESS_CASE_DIR"
DEFAULT_CASE_DIR = ".hypothesis/backprop-harness-cases"


class ConformanceFailure(AssertionError):
    """A check failed (or the implementation raised) on a drawn case."""


class WorkerLost(BaseException):
    """The implementation's worker crashed or hung on a drawn case. Not an
    ``Exception``, so hypothesis does not shrink through it: each further example
    would cost a new worker, or a whole time limit."""


@dataclass
class Subject:
    """What a conformance test is given: an implementation, or why there is none.

    ``explicit`` subjects were named by the user (``--impl``, a list passed to
    ``parametrize_with_checks``): if unavailable, their tests FAIL; discovered ones skip."""

    name: str
    impl: Implementation | None = None
    problem: str = ""
    explicit: bool = True
    ref: str = field(default="", repr=False)  # the text that names it on the command line
    # check name -> (outcome, message) when the grid ran as executor tasks (harness.conformance.grid)
    outcomes: dict | None = field(default=None, repr=False)

    def __str__(self):
        return self.name


def subject(target, *, explicit: bool = True, in_process: bool = False, timeout: float | None = None,
            registered: bool = False) -> Subject:
    """Resolve ``target`` (name, ``"module:attr"``, ``"cmd:PROGRAM"``, class, object or
    function): started in a worker process (``registered``: ``target`` is an entry
    point's name), or, ``in_process``, loaded here. A worker that cannot even start
    makes a failing subject, discovered or not: that is a broken install."""
    label = target if isinstance(target, str) else getattr(target, "name", None) or getattr(target, "__qualname__", repr(target))
    if in_process:
        try:
            impl = resolve(target)
        except ImplementationError as exc:
            return Subject(str(label), None, str(exc), explicit)
    else:
        try:
            impl = _worker(target, timeout, registered)
            impl.start()
        except ImplementationGone as exc:
            return Subject(str(label), None, f"{label}: {exc.verdict.value}: {exc}", True)
        except (RemoteError, ImplementationError, ValueError) as exc:
            return Subject(str(label), None, f"{label}: {exc}", True)
    reason = availability(impl)
    if reason:
        return Subject(impl.name, impl, f"{impl.name} is unavailable: {reason}", explicit)
    return Subject(impl.name, impl, "", explicit)


def _worker(target, timeout, registered):
    from harness.core.registry import declared
    from harness.workers.remote import DEFAULT_TIMEOUT, WorkerImplementation, python_target

    if isinstance(target, WorkerImplementation):
        return target
    timeout = timeout or DEFAULT_TIMEOUT
    if isinstance(target, str) and target.startswith("cmd:"):
        return WorkerImplementation.command(target[len("cmd:"):], timeout=timeout)
    name = python_target(target)
    return WorkerImplementation.python(name, timeout=timeout, name=name if registered or name in declared() else "")


def case_dir() -> Path:
    return Path(os.environ.get(CASE_DIR_VARIABLE) or DEFAULT_CASE_DIR).resolve()


def _case_path(impl: Implementation, check, case: Case) -> Path:
    digest = hashlib.sha256()
    for array in (case.x, case.y, *(a for pair in case.params for a in pair)):
        digest.update(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes())
    digest.update(case.spec.describe().encode())
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in impl.name)
    return case_dir() / f"{slug}-{check_name(check)}-{digest.hexdigest()[:12]}.npz"


def _is_final_example() -> bool:
    # Hypothesis replays the minimal failing example last; only that one's case file
    # is worth writing (the shrinker's intermediate failures are not).
    try:
        from hypothesis.control import current_build_context

        return current_build_context().is_final
    except Exception:  # an internal API: when unsure, write the file
        return True


def _save_atomically(case: Case, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    save_case(case, partial)
    os.replace(partial, path)  # pytest-xdist workers may write the same case at once


def check_once(impl: Implementation, check, case: Case, device: str | None = None):
    """Run ``check`` on ``case``; a FAIL or ERROR raises ``ConformanceFailure`` with
    the full report, whose reproduce line names the saved case file. Returns the
    result otherwise: PASS, SKIP, or INCONCLUSIVE (a drawn case the dtype cannot
    judge -- gradients at rounding level of zero, say -- judges nothing either way)."""
    __tracebackhide__ = True
    path = _case_path(impl, check, case)
    case = Case(case.spec, case.params, case.x, case.y, case.seed, case.label, f"--case-file {shlex.quote(str(path))}")
    note(f"case: {case.describe()}")
    result = run_check(check, Trial(impl, case, device))
    if result.ok or result.verdict is Verdict.INCONCLUSIVE:
        return result
    if result.verdict in (Verdict.CRASHED, Verdict.TIMEOUT):
        _save_atomically(case, path)
        raise WorkerLost(f"{result.describe()}\n  (the search stopped here: the case is saved as it was drawn, not shrunk)")
    if _is_final_example():
        _save_atomically(case, path)
    raise ConformanceFailure(result.describe())


def property_test(check, impl, *, settings=None, device: str | None = None):
    """A zero-argument callable that runs ``check`` on ``impl`` for every case the
    strategies draw (within the implementation's capabilities), under ``settings``
    (default: the profile ``HYPOTHESIS_PROFILE`` selects). It raises
    ``ConformanceFailure`` for the minimal failing case, and skips (pytest) when the
    check applied to no drawn case."""
    impl = impl if isinstance(impl, Implementation) else resolve(impl)
    applied, skipped = [], set()

    @given(case=strategies.cases_for(impl))
    def conforms(case):
        __tracebackhide__ = True
        result = check_once(impl, check, case, device)
        if result.verdict in (Verdict.SKIP, Verdict.INCONCLUSIVE):
            skipped.add(result.message if result.verdict is Verdict.SKIP else f"INCONCLUSIVE: {result.message}")
        else:
            applied.append(result)

    # One database key per (implementation, check): these functions share one source.
    conforms.hypothesis.inner_test._hypothesis_internal_add_digest = f"{impl.name}:{check_name(check)}".encode()
    conforms = (settings or conformance_settings())(conforms)

    def run():
        __tracebackhide__ = True
        try:
            conforms()
        except WorkerLost as lost:
            raise ConformanceFailure(str(lost)) from None
        if not applied:
            import pytest

            reasons = sorted(skipped)
            more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
            pytest.skip(f"{check_name(check)} applied to none of the drawn cases: {'; '.join(reasons[:3])}{more}")

    return run


def run_subject(check, target: Subject) -> None:
    """The body of one conformance test: fail for an unusable named implementation,
    skip for an unusable discovered one, else run the property."""
    import pytest

    __tracebackhide__ = True
    if target.problem:
        if target.explicit:
            pytest.fail(f"{target.problem} (it was named explicitly, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(target.problem)
    if target.outcomes is not None and check_name(check) in target.outcomes:
        outcome, message = target.outcomes[check_name(check)]
        if outcome == "failed":
            raise ConformanceFailure(message)
        if outcome == "skipped":
            pytest.skip(message)
        return
    property_test(check, target.impl)()


def parametrize_with_checks(impls, *, in_process: bool = False, timeout: float | None = None):
    """A pytest decorator: one test per (implementation, check) pair.

    ``impls`` are names, ``"module:attr"`` or ``"cmd:PROGRAM"`` strings,
    Implementation classes or objects, plain functions
    ``f(spec, params, x, y) -> (loss, grads)``, or ``Mapping`` objects (one test per
    mapping check, over the mapping's sample cases)::

        @harness.parametrize_with_checks([mine.backprop])
        def test_backprop(impl, check):
            check(impl)

    Each implementation runs in a worker process (objects are loaded there by the
    module-level name they have), so one that crashes, exits or hangs fails its own
    tests and no others; ``in_process=True`` runs them in the test process instead.
    ``check(impl)`` runs that check as a hypothesis property and raises with the
    report and the command that reproduces the minimal failing case."""
    import functools

    import pytest

    from harness.checks import ALL_CHECKS
    from harness.conformance.mapping_tests import mapping_params
    from harness.core.mapping import Mapping

    if isinstance(impls, (str, bytes)) or not hasattr(impls, "__iter__"):
        raise TypeError(f"parametrize_with_checks: expected a list of implementations, got {impls!r}")
    impls = list(impls)
    subjects = [subject(t, explicit=True, in_process=in_process, timeout=timeout) for t in impls if not isinstance(t, Mapping)]
    params = mapping_params([t for t in impls if isinstance(t, Mapping)])
    for s in subjects:
        for check in ALL_CHECKS:
            bound = functools.partial(_check_subject, check)
            bound.__name__ = check_name(check)
            params.append(pytest.param(s, bound, id=f"{s.name}-{check_name(check)}"))
    return pytest.mark.parametrize(("impl", "check"), params)


def _check_subject(check, target):
    __tracebackhide__ = True
    run_subject(check, target if isinstance(target, Subject) else subject(target))
