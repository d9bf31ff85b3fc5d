"""backprop-harness: are an implementation's gradients right, where are they wrong,
and how fast is it?

The Python API, one of the front ends (beside the command line, the pytest plugin and
the asv suite); everything here is public and everything else is an implementation
detail. An implementation is given as a registered name, ``"module:attr"``, an
``Implementation`` (class or instance), an object with ``prepare``, or a plain
function ``f(spec, params, x, y) -> (loss, grads)``. Any other mapping -- an
operator, a layer, a function with its backward -- is a ``Mapping`` (NumPy
functions), or ``torch_mapping(...)`` / ``jax_mapping(...)``, checked by the same
``check``.
"""

from harness.checks import ALL_CHECKS, Trial, run_check
from harness.checks import run_checks as _run_checks
from harness.core.case_files import load_case, save_case
from harness.core.cases import Case, make_case
from harness.core.mapping import Input, Mapping, NotOffered
from harness.core.mapping_cases import MappingCase, load_mapping_case, save_mapping_case
from harness.core.out_of_process import WorkerCommand
from harness.core.protocol import (
    Capabilities,
    Implementation,
    ImplementationError,
    Prepared,
    StepResult,
    as_implementation,
)
from harness.core.registry import available, implementations, register, resolve
from harness.core.results import CheckResult, Verdict
from harness.core.spec import ACTIVATIONS, LOSSES, SEED_SPEC, NetworkSpec


def check(impl, case: Case | MappingCase | None = None, *, dtype: str | None = None, seed: int = 0,
          **kwargs) -> list[CheckResult]:
    """Check ``impl`` on ``case``, or on the default battery in every dtype it declares
    (``dtype`` narrows that) -- the cases ``backprop-harness check`` runs -- and return
    the result records. A battery case left out for the implementation (beyond its
    ``max_multiply_adds``) gives a SKIP record saying why; an implementation that
    cannot run here gives a FAIL record; and when nothing at all was judged (every
    case left out), a closing INCONCLUSIVE record ``judged`` says so, so that
    ``all(r.ok for r in results)`` is never true for a run that judged nothing.
    ``kwargs`` go to ``run_checks`` (``device``, ``probes``, ``strict_determinism``).

    A ``Mapping`` (or ``"module:attr"`` naming one) is checked on its sample cases
    instead: ``check(mapping, dtype=None, seed=0, size=None, second_order=False,
    probes=5)``; ``size`` draws one random case whose first float input has about that
    many elements."""
    from harness.checks import planner
    from harness.checks.runner import nothing_judged

    mapping = _as_mapping(impl)
    if mapping is not None:
        from harness.checks.mapping_runner import check_mapping

        results = check_mapping(mapping, case, dtype=dtype, seed=seed, **kwargs)
        reason = nothing_judged(mapping.name, results)
        if reason:
            results.append(CheckResult("judged", mapping.name, "-", Verdict.INCONCLUSIVE, reason))
        return results
    impl = resolve(impl)
    results = []
    for run in planner.plan([impl], named=True, case=case, dtypes=[dtype] if dtype else None, seed=seed,
                            device=kwargs.get("device")):
        if run.case is None:  # the same records the command line writes
            if run.failed:
                results.append(CheckResult("available", impl.name, run.case_label, Verdict.FAIL, f"named explicitly but {run.skip}"))
            else:
                results.append(CheckResult("applicable", impl.name, run.case_label, Verdict.SKIP, run.skip))
        else:
            results.extend(_run_checks(impl, run.case, **kwargs))
    reason = nothing_judged(impl.name, results)
    if reason:
        results.append(CheckResult("judged", impl.name, "-", Verdict.INCONCLUSIVE, reason))
    return results


def _as_mapping(target):
    """``target`` as a Mapping if it is one (or ``"module:attr"`` naming one), else None."""
    if isinstance(target, Mapping):
        return target
    if isinstance(target, str) and ":" in target and target not in implementations():
        import importlib

        module_name, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception:
            return None  # resolve() reports it
        if isinstance(obj, Mapping):
            obj.ref = target
            return obj
    return None


def torch_mapping(fn_or_module, **kwargs) -> Mapping:
    """A PyTorch function, ``autograd.Function.apply`` or ``nn.Module`` as a Mapping
    (see ``harness.mappings.torch_mapping``); torch is imported here, not before."""
    from harness.mappings.torch_mapping import torch_mapping as build

    return build(fn_or_module, **kwargs)


def jax_mapping(fn, **kwargs) -> Mapping:
    """A JAX function as a Mapping (see ``harness.mappings.jax_mapping``); JAX is
    imported here, not before."""
    from harness.mappings.jax_mapping import jax_mapping as build

    return build(fn, **kwargs)


def run_checks(impl, case: Case, **kwargs) -> list[CheckResult]:
    """Every applicable check of ``impl`` on ``case`` (see ``harness.checks.run_checks``)."""
    return _run_checks(resolve(impl), case, **kwargs)


# Hypothesis strategies, loaded on first use so that ``import harness`` stays light.
_STRATEGIES = ("specs", "dtypes", "batch_sizes", "parameters", "inputs", "targets", "cases_for")


def __getattr__(name):
    if name in _STRATEGIES:
        from harness.conformance import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def parametrize_with_checks(impls):
    """A pytest decorator putting the whole conformance suite in your test file::

        @harness.parametrize_with_checks([mine.backprop, my_mapping])
        def test_backprop(impl, check):
            check(impl)

    One test per (implementation, check); each check runs as a hypothesis property
    over cases within the implementation's declared capabilities. A ``Mapping`` gets
    one test per mapping check, run over its sample cases in every dtype it declares."""
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
    "Input",
    "Mapping",
    "MappingCase",
    "NotOffered",
    "NetworkSpec",
    "Prepared",
    "StepResult",
    "Trial",
    "Verdict",
    "WorkerCommand",
    "as_implementation",
    "available",
    "batch_sizes",
    "cases_for",
    "check",
    "dtypes",
    "implementations",
    "inputs",
    "jax_mapping",
    "load_case",
    "load_mapping_case",
    "make_case",
    "parameters",
    "parametrize_with_checks",
    "register",
    "resolve",
    "run_check",
    "run_checks",
    "save_case",
    "save_mapping_case",
    "specs",
    "targets",
    "torch_mapping",
]
