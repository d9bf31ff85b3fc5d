"""Contract checks: what every answer must satisfy before its values are judged
(finite, shaped and typed as asked, inputs untouched, repeatable, stateless)."""

from __future__ import annotations

import numpy as np

from harness.checks.compare import compare_gradients, disagreement, failing
from harness.checks.trial import Trial, expected_for, flat, other_batch, other_params, shapes_ok, tensor_names
from harness.core import hints
from harness.core.cases import Case
from harness.core.protocol import StepResult
from harness.core.results import CheckResult, Verdict


def check_outputs_are_finite(trial: Trial) -> CheckResult:
    """The loss is a finite scalar and every gradient element is finite."""
    name = "outputs_are_finite"
    result, _ = trial.first
    loss = np.asarray(result.loss)
    if loss.size != 1:
        return trial.result(name, Verdict.FAIL, f"loss has shape {loss.shape}, expected a scalar")
    if not np.isfinite(loss).all():
        return trial.result(name, Verdict.FAIL, f"loss is {float(loss.reshape(()))}, expected a finite number",
                            hint=hints.nonfinite_hint(trial.case))
    bad = []
    for tname, g in zip(tensor_names(trial.case.spec.n_layers), flat(result.grads)):
        g = np.asarray(g)
        if g.dtype.kind in "fc" and not np.isfinite(g).all():
            bad.append(f"{tname} has {int((~np.isfinite(g)).sum())} non-finite elements")
    if bad:
        return trial.result(name, Verdict.FAIL, "; ".join(bad), hint=hints.nonfinite_hint(trial.case))
    return trial.result(name, Verdict.PASS)


def check_gradient_shapes(trial: Trial) -> CheckResult:
    """One ``(dW, db)`` per layer, each shaped like its parameter."""
    name = "gradient_shapes"
    result, _ = trial.first
    spec = trial.case.spec
    if len(result.grads) != spec.n_layers:
        return trial.result(name, Verdict.FAIL, f"{len(result.grads)} gradient pairs, expected {spec.n_layers} (one (dW, db) per layer)")
    pairs = list(zip(tensor_names(spec.n_layers), flat(result.grads), flat(trial.case.params)))
    wrong = [f"{tname} has shape {np.shape(g)}, expected {p.shape}" for tname, g, p in pairs if np.shape(g) != p.shape]
    if wrong:
        transposed = any(np.shape(g) == p.shape[::-1] and p.ndim == 2 for _, g, p in pairs)
        hint = "a gradient shaped like its parameter's transpose: transposed?" if transposed else ""
        return trial.result(name, Verdict.FAIL, "; ".join(wrong), hint=hint)
    return trial.result(name, Verdict.PASS)


def check_gradient_dtypes(trial: Trial) -> CheckResult:
    """Every gradient comes back in the dtype that was asked for."""
    name = "gradient_dtypes"
    result, _ = trial.first
    wrong = [
        f"{tname} is {np.asarray(g).dtype}"
        for tname, g in zip(tensor_names(trial.case.spec.n_layers), flat(result.grads))
        if np.asarray(g).dtype != np.dtype(trial.dtype)
    ]
    if wrong:
        return trial.result(name, Verdict.FAIL, f"{'; '.join(wrong)}, expected {trial.dtype} (the dtype of the inputs)")
    return trial.result(name, Verdict.PASS)


def check_inputs_not_mutated(trial: Trial) -> CheckResult:
    """Parameters, x and y are unchanged after a step."""
    name = "inputs_not_mutated"
    result, working = trial.first
    if not result.inputs_observed:
        return trial.result(name, Verdict.SKIP, "the worker does not send its inputs back after a step "
                            "(the protocol's return_inputs), so a change to them cannot be seen")
    pristine = trial.case
    changed = []
    pairs = list(zip(tensor_names(pristine.spec.n_layers), flat(working.params), flat(pristine.params)))
    pairs += [("x", working.x, pristine.x), ("y", working.y, pristine.y)]
    for label, after, before in pairs:
        if after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
            n = int((after != before).sum()) if after.shape == before.shape else after.size
            changed.append(f"{label.replace('layer', 'param layer')} ({n} elements changed)")
    if changed:
        return trial.result(name, Verdict.FAIL, f"inputs modified by the step: {', '.join(changed)}",
                            hint="copy before updating in place (e.g. x = x.copy(), or out= on a fresh array)")
    return trial.result(name, Verdict.PASS)


def check_deterministic(trial: Trial) -> CheckResult:
    """Two identical calls agree (bitwise, unless a tolerance is declared)."""
    name = "deterministic"
    first, _ = trial.first
    why = disagreement(first, trial.call(), trial.capabilities.nondeterminism)
    if why:
        return trial.result(name, Verdict.FAIL, f"two identical calls disagree: {why}",
                            hint="declare Capabilities(nondeterminism=...) if this is intended")
    return trial.result(name, Verdict.PASS)


def check_no_state_between_calls(trial: Trial) -> CheckResult:
    """A, then B, then A again gives the first A's answer (same and fresh prepares)."""
    name = "no_state_between_calls"
    case_a = trial.case
    first, _ = trial.first
    rel = trial.capabilities.nondeterminism
    other = other_batch(case_a)
    working = case_a.copy()
    prepared = trial.prepare(working)
    trial.step(prepared, working)
    between = trial.step(prepared, other.copy())
    stale = _stale(trial, other, between)
    if stale:
        return trial.result(name, Verdict.FAIL, f"A, then a different batch B on one prepared implementation: B's {stale}",
                            hint="a result cached from an earlier call (keyed by shape or by object identity?)")
    why = disagreement(first, trial.step(prepared, case_a.copy()), rel)
    if why:
        return trial.result(name, Verdict.FAIL, f"A, B, A on one prepared implementation: {why}",
                            hint="state carried across steps: gradients accumulated and never zeroed, or a cached batch?")
    # A fresh prepare of other parameters in between must not leak either.
    trial.call(other_params(case_a))
    why = disagreement(first, trial.call(), rel)
    if why:
        return trial.result(name, Verdict.FAIL, f"A, B, A with separate prepares: {why}",
                            hint="module-level state shared between prepared instances?")
    return trial.result(name, Verdict.PASS)


def _stale(trial: Trial, other: Case, got: StepResult) -> str | None:
    """Why ``got``, the answer for batch B after batch A on one prepared
    implementation, points at state: it is A's answer bit for bit, or it differs from
    B's answer on a fresh prepare. A wrong answer that a fresh prepare gives too is
    not state (gradients_match_reference judges values)."""
    if not shapes_ok(got.grads, other) or _right(trial, other, got):
        return None
    if disagreement(trial.first[0], got, 0.0) is None:
        return "result equals A's bit for bit: A's answer was returned again"
    why = disagreement(trial.call(other), got, trial.capabilities.nondeterminism)
    if why:
        return f"result differs from B's result on a fresh prepare ({why}): something of A's was kept"
    return None


def _right(trial: Trial, case: Case, got: StepResult) -> bool:
    expected = trial.expected if case is trial.case else expected_for(case)
    return not failing(compare_gradients(got.grads, expected, dtype=trial.judged_dtype(flat(got.grads))))


CONTRACT_CHECKS = (
    check_outputs_are_finite,
    check_gradient_shapes,
    check_gradient_dtypes,
    check_inputs_not_mutated,
    check_deterministic,
    check_no_state_between_calls,
)
