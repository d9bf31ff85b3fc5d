"""Running checks: the list of every check, and the one engine behind the CLI, the
Python API, the pytest plugin and the benchmarks.

Every check is a plain function named after the property it asserts; it takes a
``Trial`` and returns a ``CheckResult``, and none raises for a wrong implementation.
Which checks apply is decided from the implementation's declared capabilities.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from harness.checks.contracts import CONTRACT_CHECKS
from harness.checks.probes import check_gradient_probes
from harness.checks.properties import PROPERTY_CHECKS
from harness.checks.trial import ImplementationRaised, Trial
from harness.checks.values import VALUE_CHECKS
from harness.core.cases import Case
from harness.core.containment import summarise, user_interrupted, watching_interrupts
from harness.core.out_of_process import ImplementationGone
from harness.core.protocol import Implementation, availability
from harness.core.results import CheckResult, Verdict, printable

ComplexWarning = getattr(np, "exceptions", np).ComplexWarning  # numpy >= 1.25 moved it

ALL_CHECKS = CONTRACT_CHECKS + VALUE_CHECKS + (check_gradient_probes,) + PROPERTY_CHECKS


def check_name(check) -> str:
    return check.__name__.removeprefix("check_")


def run_check(check, trial: Trial) -> CheckResult:
    """Run one check; an implementation that raises -- anything, ``SystemExit`` and
    ``KeyboardInterrupt`` included, unless it is the user's Ctrl-C -- becomes an
    ERROR result."""
    start = time.perf_counter()
    with watching_interrupts(), warnings.catch_warnings():
        # a complex answer is judged by its real part (gradient_dtypes reports the dtype): no warning for each cast
        warnings.simplefilter("ignore", ComplexWarning)
        try:
            result = check(trial)
        except ImplementationRaised as exc:
            result = trial.result(check_name(check), Verdict.ERROR, str(exc))
        except ImplementationGone as exc:  # its worker died or hung: CRASHED or TIMEOUT
            result = trial.result(check_name(check), exc.verdict, str(exc))
        except BaseException as exc:  # output the check could not even read: still the implementation's error
            if user_interrupted(exc):
                raise
            result = trial.result(check_name(check), Verdict.ERROR, f"could not evaluate the output: {summarise(exc, 'check')}")
    result.seconds = time.perf_counter() - start
    return result


def run_checks(impl: Implementation, case: Case, *, device: str | None = None, checks=ALL_CHECKS, probes: int = 4,
               probe_seed: int = 0, strict_determinism: bool = False) -> list[CheckResult]:
    """Every applicable check of ``impl`` on ``case``.

    An unsupported case (by declared capabilities) or an unavailable implementation
    gives a single SKIP result with the reason. ``strict_determinism`` demands that
    identical calls agree bitwise (by default a difference within rounding passes,
    with a note). After a check whose implementation's worker crashed or timed out,
    the remaining checks are not run (each says so)."""
    trial = Trial(impl, case, device, probes=probes, probe_seed=probe_seed, strict_determinism=strict_determinism)
    reason = availability(impl, trial.device) or impl.capabilities.unsupported(case.spec, case.dtype)
    if reason:
        return [trial.result("applicable", Verdict.SKIP, reason)]
    results, gone = [], None
    for check in checks:
        if gone is not None:
            results.append(trial.result(check_name(check), Verdict.SKIP, f"not run: {gone.check} {gone.verdict.value}"))
            continue
        results.append(run_check(check, trial))
        if results[-1].verdict in (Verdict.CRASHED, Verdict.TIMEOUT):
            gone = results[-1]
    return results


def nothing_judged(impl_name: str, results) -> str | None:
    """Why nothing of ``impl_name`` was judged (every result a SKIP, or none), or
    ``None``. A run that judged nothing has not passed."""
    skipped = [r for r in results if r.impl == printable(impl_name)]  # (results hold it printable)
    if any(r.verdict is not Verdict.SKIP for r in skipped):
        return None
    reasons = sorted({r.message for r in skipped if r.message})
    return f"nothing of {impl_name} was judged: " + ("; ".join(reasons) if reasons else "no case was run")
