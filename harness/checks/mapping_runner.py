"""Running the mapping checks: the list of them, the engine behind the Python API, the
command line and the pytest plugin, and the cases a mapping is checked on.

Every check is a plain function named after the property it asserts; it takes a
``MappingTrial`` and returns a ``CheckResult``; none raises for a wrong mapping.
"""

from __future__ import annotations

import time

from harness.checks.mapping_contracts import MAPPING_CONTRACT_CHECKS
from harness.checks.mapping_jvp import JVP_CHECKS
from harness.checks.mapping_probes import PROBE_CHECKS
from harness.checks.mapping_trial import PROBES, MappingTrial
from harness.checks.mapping_values import VALUE_CHECKS
from harness.checks.trial import ImplementationRaised, summarise
from harness.core.mapping import Mapping, NotOffered
from harness.core.mapping_cases import MappingCase, sample_cases
from harness.core.results import CheckResult, Verdict

MAPPING_CHECKS = MAPPING_CONTRACT_CHECKS + VALUE_CHECKS + PROBE_CHECKS + JVP_CHECKS


def mapping_check_name(check) -> str:
    return check.__name__.removeprefix("check_")


def run_mapping_check(check, trial: MappingTrial) -> CheckResult:
    """Run one check; a mapping that raises becomes an ERROR result, a framework that
    does not offer what the check needs a SKIP."""
    start = time.perf_counter()
    name = mapping_check_name(check)
    try:
        result = check(trial)
    except ImplementationRaised as exc:
        result = trial.result(name, Verdict.ERROR, str(exc))
    except NotOffered as exc:
        result = trial.result(name, Verdict.SKIP, f"the framework does not offer it here: {exc}")
    except Exception as exc:  # output the check could not even read: still the mapping's error
        result = trial.result(name, Verdict.ERROR, f"could not evaluate the output: {summarise(exc, 'check')}")
    result.seconds = time.perf_counter() - start
    return result


def run_mapping_checks(mapping: Mapping, case: MappingCase, *, checks=MAPPING_CHECKS, probes: int = PROBES,
                       second_order: bool = False) -> list[CheckResult]:
    """Every mapping check on ``case`` (a made-up degenerate case the forward does not
    accept: one SKIP record saying so). Thread pools are held to one thread meanwhile:
    the oracle makes thousands of small calls, and numpy's and torch's pools fighting
    over a small shared machine made a tiny convolution 2000 times slower."""
    from threadpoolctl import threadpool_limits

    trial = MappingTrial(mapping, case, probes=probes, second_order=second_order)
    with threadpool_limits(1):
        if case.optional:
            try:
                _ = trial.differentiator  # the float64 forward at this shape
            except ImplementationRaised as exc:
                return [trial.result("applicable", Verdict.SKIP, f"the forward does not accept this shape: {exc}")]
        return [run_mapping_check(check, trial) for check in checks]


def mapping_cases(mapping: Mapping, dtype: str | None = None, seed: int = 0, size: int | None = None):
    """``[(dtype, case or None, why not)]``: the cases to check, in each dtype the
    mapping declares (``dtype`` narrows that)."""
    dtypes = [dtype] if dtype else list(mapping.dtypes)
    plan = []
    for d in dtypes:
        if d not in mapping.dtypes:
            plan.append((d, None, f"dtype {d} not declared (the mapping runs in {', '.join(mapping.dtypes)})"))
            continue
        for case in sample_cases(mapping, d, seed, size):
            plan.append((d, case, ""))
    return plan


def check_mapping(mapping: Mapping, case: MappingCase | None = None, *, dtype: str | None = None, seed: int = 0,
                  size: int | None = None, second_order: bool = False, probes: int = PROBES,
                  checks=MAPPING_CHECKS) -> list[CheckResult]:
    """Every check of ``mapping`` on ``case``, or on its sample cases in every dtype it
    declares; a dtype asked for but not declared gives a SKIP record saying why."""
    if case is not None:
        return run_mapping_checks(mapping, case, checks=checks, probes=probes, second_order=second_order)
    results = []
    for d, item, why in mapping_cases(mapping, dtype, seed, size):
        if item is None:
            results.append(CheckResult("applicable", mapping.name, d, Verdict.SKIP, why))
        else:
            results.extend(run_mapping_checks(mapping, item, checks=checks, probes=probes, second_order=second_order))
    return results
