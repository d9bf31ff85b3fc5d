"""backprop-harness: are an implementation's gradients right, where are they wrong,
and how fast is it?

The public surface; everything else is an implementation detail.
"""

from harness.cases import Case, load_case, make_case, save_case
from harness.checks import ALL_CHECKS, Trial, run_check, run_checks
from harness.registry import (
    Capabilities,
    Implementation,
    ImplementationError,
    Prepared,
    StepResult,
    as_implementation,
    available,
    implementations,
    register,
    resolve,
)
from harness.results import CheckResult, Verdict
from harness.spec import ACTIVATIONS, LOSSES, SEED_SPEC, NetworkSpec


def check(impl, case=None, **kwargs) -> list[CheckResult]:
    """Check ``impl`` (a name, ``"module:attr"``, an object or a plain function) on
    ``case`` (default: the built-in battery in float64); returns the result records."""
    from harness import battery

    cases = [case] if case is not None else battery.default_cases("float64")
    return [r for c in cases for r in run_checks(impl, c, **kwargs)]


# Hypothesis strategies, loaded on first use so that ``import harness`` stays light.
_STRATEGIES = ("specs", "dtypes", "batch_sizes", "parameters", "inputs", "targets", "cases_for")


def __getattr__(name):
    if name in _STRATEGIES:
        from harness import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def parametrize_with_checks(impls):
    """A pytest decorator putting the whole conformance suite in your test file::

        @harness.parametrize_with_checks([mine.backprop])
        def test_backprop(impl, check):
            check(impl)

    One test per (implementation, check); each check runs as a hypothesis property
    over cases within the implementation's declared capabilities."""
    from harness.conformance.property_tests import parametrize_with_checks as decorate

    return decorate(impls)


__all__ = [
    "ACTIVATIONS",
    "ALL_CHECKS",
    "LOSSES",
    "SEED_SPEC",
    "Capabilities",
    "Case",
    "CheckResult",
    "Implementation",
    "ImplementationError",
    "NetworkSpec",
    "Prepared",
    "StepResult",
    "Trial",
    "Verdict",
    "as_implementation",
    "available",
    "batch_sizes",
    "cases_for",
    "check",
    "dtypes",
    "implementations",
    "inputs",
    "load_case",
    "make_case",
    "parameters",
    "parametrize_with_checks",
    "register",
    "resolve",
    "run_check",
    "run_checks",
    "save_case",
    "specs",
    "targets",
]
