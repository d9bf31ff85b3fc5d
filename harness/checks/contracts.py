"""Contract checks: what every answer must satisfy before its values are judged
(finite, shaped and typed as asked, inputs untouched, repeatable, stateless)."""

from __future__ import annotations

import numpy as np

from harness.checks.compare import DECLARED, IDENTICAL, ROUNDING, UNJUDGED, agreement, compare_gradients, failing
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
    _, working = trial.first
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
    """Two identical calls agree: bitwise, or within the dtype's rounding (a PASS with
    a note; bitwise is demanded by --strict-determinism or Capabilities(deterministic=True)),
    or within a declared nondeterminism."""
    name = "deterministic"
    first, _ = trial.first
    outcome = _agreement(trial, trial.case, first, trial.call(), strict=trial.strict_determinism)
    if outcome.kind == IDENTICAL:
        return trial.result(name, Verdict.PASS, "two identical calls agree bitwise")
    if outcome.kind in (ROUNDING, DECLARED):
        why = (f"two identical calls differ within rounding ({outcome.why}); --strict-determinism demands bitwise equality"
               if outcome.kind == ROUNDING else f"two identical calls differ {outcome.why}")
        return trial.result(name, Verdict.PASS, why, note=why)
    if outcome.kind == UNJUDGED:
        return trial.result(name, Verdict.INCONCLUSIVE, f"two identical calls differ where nothing can be judged: {outcome.why}")
    hint = ("bitwise equality is demanded (--strict-determinism or Capabilities(deterministic=True)): a summation "
            "order that varies between calls (threads, atomics, set or hash order)?" if trial.strict_determinism
            else "randomness left unseeded, or state carried between calls? If the difference is intended, "
                 "declare Capabilities(nondeterminism=...)")
    return trial.result(name, Verdict.FAIL, f"two identical calls disagree: {outcome.why}", hint=hint)


def check_no_state_between_calls(trial: Trial) -> CheckResult:
    """A, then B, then A again gives the first A's answer (same and fresh prepares),
    to the same definition of "agree" as ``deterministic``; differences that two
    fresh identical calls show as well are nondeterminism, not state."""
    name = "no_state_between_calls"
    case_a = trial.case
    first, _ = trial.first
    other = other_batch(case_a)
    working = case_a.copy()
    prepared = trial.prepare(working)
    trial.step(prepared, working)
    between = trial.step(prepared, other.copy())
    verdict, why = _stale(trial, other, between)
    if verdict is Verdict.FAIL:
        return trial.result(name, verdict, f"A, then a different batch B on one prepared implementation: B's {why}",
                            hint="a result cached from an earlier call (keyed by shape or by object identity?)")
    notes = [why] if why else []
    again = trial.step(prepared, case_a.copy())
    verdict, why = _state_or_nondeterminism(trial, case_a, first, again, trial.call)
    if verdict is Verdict.FAIL:
        return trial.result(name, verdict, f"A, B, A on one prepared implementation: {why}",
                            hint="state carried across steps: gradients accumulated and never zeroed, or a cached batch?")
    notes += [why] if why else []
    # A fresh prepare of other parameters in between must not leak either.
    trial.call(other_params(case_a))
    verdict, why = _state_or_nondeterminism(trial, case_a, first, trial.call(), trial.call)
    if verdict is Verdict.FAIL:
        return trial.result(name, verdict, f"A, B, A with separate prepares: {why}",
                            hint="module-level state shared between prepared instances?")
    notes += [why] if why else []
    inconclusive = any(n.startswith("cannot be judged") for n in notes)
    message = "; ".join(dict.fromkeys(notes))
    if inconclusive:
        return trial.result(name, Verdict.INCONCLUSIVE, message)
    return trial.result(name, Verdict.PASS, message, note=message)


# Fresh identical calls that differ by more than this fraction of a tensor's magnitude
# are not rounding or scheduling noise (atomics, summation order): such differences
# are read as state. Below it, state is blamed only where a difference exceeds
# NOISE_FACTOR times the RMS difference (in tolerances) of two fresh identical calls;
# for noise of one dominant element the chance of a false blame is then ~5e-5.
NOISE_CEILING = 1e-2
NOISE_FACTOR = 100.0


def _agreement(trial: Trial, case: Case, a: StepResult, b: StepResult, *, strict: bool = False):
    expected = trial.expected if case is trial.case else expected_for(case)
    return agreement(a, b, expected, dtype=trial.judged_dtype(flat(a.grads) + flat(b.grads)),
                     nondeterminism=trial.capabilities.nondeterminism, strict=strict)


def _state_or_nondeterminism(trial: Trial, case: Case, reference: StepResult, got: StepResult, fresh) -> tuple:
    """``(verdict, why)`` for ``got``, an answer for ``case`` after other calls, against
    ``reference``, a fresh one: PASS when they agree, or when two more fresh calls
    (``fresh(case)``) differ from ``reference`` as much (nondeterminism, judged by
    ``deterministic``; ``why`` then says so); FAIL when only state explains it;
    INCONCLUSIVE where the difference cannot be judged."""
    outcome = _agreement(trial, case, reference, got)
    if outcome.agrees:
        return Verdict.PASS, ""
    if outcome.kind == UNJUDGED:
        return Verdict.INCONCLUSIVE, f"cannot be judged: {outcome.why}"
    noise = [_agreement(trial, case, reference, fresh(case)) for _ in range(2)]
    if all(n.agrees for n in noise):
        return Verdict.FAIL, outcome.why
    level = max(n.spread for n in noise)
    ceiling = max(NOISE_CEILING, trial.capabilities.nondeterminism)
    if max(n.relative for n in noise) > ceiling:
        return Verdict.FAIL, (f"{outcome.why}; fresh identical calls differ too, by up to "
                              f"{max(n.relative for n in noise):.3g} of a tensor's magnitude, beyond any rounding or "
                              "scheduling noise: the calls keep state")
    if outcome.spread > NOISE_FACTOR * level:
        return Verdict.FAIL, f"{outcome.why}, {outcome.spread / level:.3g} times what fresh identical calls differ by"
    return Verdict.PASS, ("differences no larger than fresh identical calls show: nondeterminism (see deterministic), "
                          "not state")


def _stale(trial: Trial, other: Case, got: StepResult) -> tuple:
    """``(verdict, why)`` for ``got``, the answer for batch B after batch A on one
    prepared implementation: FAIL when it points at state -- it is A's answer bit for
    bit, or it differs from B's answer on a fresh prepare beyond what fresh calls
    differ by. A wrong answer that a fresh prepare gives too is not state
    (gradients_match_reference judges values)."""
    if not shapes_ok(got.grads, other) or _right(trial, other, got):
        return Verdict.PASS, ""
    if _agreement(trial, trial.case, trial.first[0], got, strict=True).kind == IDENTICAL:
        return Verdict.FAIL, "result equals A's bit for bit: A's answer was returned again"
    verdict, why = _state_or_nondeterminism(trial, other, trial.call(other), got, trial.call)
    if verdict is Verdict.FAIL:
        return verdict, f"result differs from B's result on a fresh prepare ({why}): something of A's was kept"
    return verdict, why


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
