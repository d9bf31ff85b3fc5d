"""Contract checks for a mapping: what every answer must satisfy before its values are
judged (finite, shaped and typed like the inputs, inputs untouched, repeatable,
stateless, no gradient for integer inputs). They read the raw answers, before any
framework could have cast or reduced them."""

from __future__ import annotations

import dataclasses

import numpy as np

from harness.checks.mapping_trial import MappingTrial
from harness.checks.trial import ImplementationRaised
from harness.core.mapping import copied
from harness.core.mapping_cases import MappingCase
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import eps, factor

_NO_VJP = "the mapping gives no vjp"


def check_derivatives_are_judged(trial: MappingTrial) -> CheckResult:
    """Something of the mapping's derivatives can be judged on this case: it gives a vjp
    or a jvp, and the case has float input elements. Where not, every derivative check
    would SKIP or hold vacuously (a wrong VJP of an empty input is right there), and a
    run that judged no derivative must not exit 0: INCONCLUSIVE, saying why."""
    name = "derivatives_are_judged"
    if trial.mapping.vjp is None and trial.mapping.jvp is None:
        return trial.result(name, Verdict.INCONCLUSIVE, "the mapping gives neither a vjp nor a jvp: none of its "
                                                        "derivatives can be checked (only its forward's contracts ran)")
    if trial.case.n_float_elements == 0:
        shapes = ", ".join(str(tuple(x.shape)) for x in trial.case.inputs)
        return trial.result(name, Verdict.INCONCLUSIVE, f"the case has no float input elements (input shapes {shapes}): "
                                                        "no derivative can be judged on it; give inputs of at least one element")
    return trial.result(name, Verdict.PASS)


def check_outputs_are_finite(trial: MappingTrial) -> CheckResult:
    """Outputs and gradients are finite wherever the float64 forward is finite and fits
    the dtype (a float32 exp that overflows where float64 does not is not flagged)."""
    name = "outputs_are_finite"
    answer = trial.first
    limit = float(np.finfo(trial.dtype).max)
    bad = []
    for i, (y, ref) in enumerate(zip(answer.outputs, trial.oracle_outputs)):
        if y is None or y.dtype.kind not in "fc" or np.shape(y) != np.shape(ref) or np.isfinite(y).all():
            continue
        with np.errstate(invalid="ignore"):
            should = np.isfinite(ref) & (np.abs(ref) <= limit) if ref.dtype.kind == "f" else np.ones(y.shape, bool)
        n = int((should & ~np.isfinite(y)).sum())
        if n:
            bad.append(f"output {i} has {n} non-finite elements where the float64 forward is finite")
    # Gradients are judged where every output of the float64 forward is finite and fits
    # the dtype (beyond it, an infinite gradient may be the rounded truth as well).
    def representable():
        return all(ref is None or ref.dtype.kind != "f" or (np.isfinite(ref).all() and np.abs(ref).max(initial=0) <= limit)
                   for ref in trial.oracle_outputs)

    if answer.grads is not None:
        for label, g, d in zip(trial.names, answer.grads, trial.case.differentiable):
            if d and g is not None and g.dtype.kind in "fc" and not np.isfinite(g).all() and representable():
                bad.append(f"the gradient of {label} has {int((~np.isfinite(g)).sum())} non-finite elements")
    if bad:
        hint = ("an overflow or a division by zero; a NaN from the branch np.where did not take "
                "(guard the argument, not only the result)?")
        return trial.result(name, Verdict.FAIL, "; ".join(bad), hint=hint)
    return trial.result(name, Verdict.PASS)


def check_gradient_shapes(trial: MappingTrial) -> CheckResult:
    """One gradient per float input, shaped exactly like it (not merely the same size,
    not broadcast); a JVP's tangents shaped like the outputs."""
    name = "gradient_shapes"
    answer = trial.first
    if trial.mapping.vjp is None:
        return trial.result(name, Verdict.SKIP, _NO_VJP)
    if answer.grads is None:
        return trial.result(name, Verdict.FAIL, answer.grads_problem)
    wrong, hints = [], []
    for label, g, x, d in zip(trial.names, answer.grads, trial.case.inputs, trial.case.differentiable):
        if not d:
            continue
        if g is None:
            wrong.append(f"no gradient for {label} (a float input)")
        elif g.shape != x.shape:
            wrong.append(f"the gradient of {label} has shape {g.shape}, expected {x.shape}")
            if g.size == x.size:
                hints.append("same number of elements, another shape: reshaped, or transposed, instead of laid out like the input?"
                              if g.shape != x.shape[::-1] else f"{label}'s gradient is shaped like its transpose: transposed?")
            elif g.size > x.size:
                hints.append(f"{label}'s gradient is larger than {label}: not summed over the dimensions it was broadcast along?")
    wrong += _jvp_shape_problems(trial)
    if wrong:
        return trial.result(name, Verdict.FAIL, "; ".join(wrong), hint="; ".join(dict.fromkeys(hints)))
    return trial.result(name, Verdict.PASS)


def _jvp_answer(trial: MappingTrial):
    return trial.first_jvp[0]


def _jvp_shape_problems(trial) -> list[str]:
    tangents = _jvp_answer(trial)
    if tangents is None:
        return []
    outputs = trial.first.outputs
    if len(tangents) != len(outputs):
        return [f"the jvp returned {len(tangents)} tangents, expected one per output ({len(outputs)})"]
    return [f"the jvp's tangent {i} has shape {np.shape(t)}, expected {np.shape(y)} like output {i}"
            for i, (t, y) in enumerate(zip(tangents, outputs))
            if t is not None and y is not None and y.dtype.kind == "f" and np.shape(t) != np.shape(y)]


def check_gradient_dtypes(trial: MappingTrial) -> CheckResult:
    """Gradients (and outputs, and a JVP's tangents) come back in the inputs' dtype: a
    float32 gradient for float64 inputs fails here."""
    name = "gradient_dtypes"
    answer = trial.first
    wrong = [f"output {i} is {y.dtype}" for i, y in enumerate(answer.outputs)
             if y is not None and y.dtype.kind == "f" and y.dtype != np.dtype(trial.dtype)]
    if answer.grads is not None:
        wrong += [f"the gradient of {label} is {g.dtype}" for label, g, x, d in
                  zip(trial.names, answer.grads, trial.case.inputs, trial.case.differentiable)
                  if d and g is not None and g.dtype != x.dtype]
    tangents = _jvp_answer(trial)
    if tangents is not None:
        wrong += [f"the jvp's tangent {i} is {t.dtype}" for i, t in enumerate(tangents)
                  if t is not None and t.dtype.kind in "fc" and t.dtype != np.dtype(trial.dtype)]
    if wrong:
        return trial.result(name, Verdict.FAIL, f"{'; '.join(wrong)}, expected {trial.dtype} (the dtype of the inputs)",
                            hint="computed, or converted, in another precision somewhere (a float32 buffer, np.float32 constants)?")
    return trial.result(name, Verdict.PASS)


def check_inputs_not_mutated(trial: MappingTrial) -> CheckResult:
    """The forward, the VJP and the JVP leave their inputs, cotangents and tangents
    bitwise unchanged."""
    name = "inputs_not_mutated"
    answer = trial.first
    # compared after the calls B and A again (deterministic's and no_state_between_calls'):
    # a call that keeps a reference to an earlier call's arrays and writes into them later
    # changes the user's data too, and is seen only then (no pass more: each array once)
    try:
        _calls(trial)
    except ImplementationRaised:  # (reported by those checks)
        pass
    pristine = trial.case.inputs
    changed = [f"{label} by the forward ({_changed(a, b)})" for label, a, b in zip(trial.names, answer.inputs, pristine)
               if _changed(a, b)]
    changed += [f"{label} by the vjp ({_changed(a, b)})" for label, a, b in zip(trial.names, answer.vjp_inputs, pristine)
                if answer.grads is not None and _changed(a, b)]
    changed += [f"cotangent {i} by the vjp ({_changed(a, b)})" for i, (a, b) in enumerate(zip(answer.cotangents, trial.cotangents))
                if a is not None and _changed(a, b)]
    out, jvp_inputs, tangents, _ = trial.first_jvp
    if out is not None:
        changed += [f"{label} by the jvp ({_changed(a, b)})" for label, a, b in zip(trial.names, jvp_inputs, pristine)
                    if _changed(a, b)]
        changed += [f"tangent {i} by the jvp ({_changed(a, b)})" for i, (a, b) in enumerate(zip(tangents, trial.tangents))
                    if a is not None and _changed(a, b)]
    if changed:
        return trial.result(name, Verdict.FAIL, f"modified: {', '.join(changed)} (compared after every call of "
                                                f"the contract checks: a later call may have changed them)",
                            hint="an in-place update of an argument (x *= ..., out=x, x[...] = ...), or of one kept from "
                                 "an earlier call: copy it first")
    return trial.result(name, Verdict.PASS)


def _changed(after, before) -> str:
    if np.shape(after) != np.shape(before):
        return f"shape {np.shape(before)} became {np.shape(after)}"
    if same(after, before):
        return ""
    n = int(np.sum(~((after == before) | (np.isnan(after) & np.isnan(before))))) if after.dtype.kind == "f" else int(np.sum(after != before))
    return f"{n} elements changed" if n else ""


def check_deterministic(trial: MappingTrial) -> CheckResult:
    """Two identical calls agree bitwise (or within the declared nondeterminism);
    a difference at the level of rounding (another summation order) is reported apart
    from a real one (randomness, state). The calls A, B, A of no_state_between_calls
    serve: where A's two answers agree, the calls repeat; where not, two more calls in a
    row tell randomness from state."""
    name = "deterministic"
    why = _first_again(trial)
    if why:  # (A again copied before the next call, which may answer in its buffers)
        again = _calls(trial)[3]
        again = dataclasses.replace(again, outputs=copied(again.outputs),
                                    grads=None if again.grads is None else copied(again.grads))
        why = _disagreement(trial, again, trial.call(held_outputs=False, held_grads=False))
    if why:
        return trial.result(name, Verdict.FAIL, f"two identical calls disagree: {why}",
                            hint="declare Mapping(nondeterminism=...) if the order of a reduction may change between calls"
                            if "rounding" in why else "randomness (dropout in training mode?) or state kept between calls")
    return trial.result(name, Verdict.PASS)


def check_no_state_between_calls(trial: MappingTrial) -> CheckResult:
    """A call's answer does not depend on the calls before it: A, then other inputs B
    with other cotangents (B's answer must not be A's again where B's true answer is
    another), then A again (A's answer unchanged)."""
    name = "no_state_between_calls"
    first = trial.first
    other, cotangents_b, b, _ = _calls(trial)
    if first.grads is not None and b.grads is not None and _identical(first.grads, b.grads):
        wrong = _stale_answer_is_wrong(trial, other, cotangents_b, first.grads)
        if wrong:
            return trial.result(name, Verdict.FAIL, f"A, then other inputs B: B's gradient equals A's bit for bit, "
                                                    f"but B's own is another: {wrong}",
                                hint="a result cached from an earlier call (keyed by shape or by object identity?)")
    why = _first_again(trial)
    if why:
        return trial.result(name, Verdict.FAIL, f"A, B, A: A's answer changed: {why}",
                            hint="state carried across calls: gradients accumulated and never zeroed, a saved forward "
                                 "or a cache used by the next call?")
    return trial.result(name, Verdict.PASS)


def _calls(trial: MappingTrial):
    """``(B's case, B's cotangents, B's answer, A's answer again)``: after the first call
    A, a call on other inputs B, then A again; made once per trial."""
    if getattr(trial, "_calls", None) is None:
        other = _other_case(trial.case)
        # Twice the rolled cotangents (exact in any float dtype): a VJP is linear in them, so
        # even where rolling changes nothing (one output element, a linear map) a correct B
        # differs from A unless its Jacobian differs to make up for it
        cotangents_b = tuple(None if c is None else _rolled(c, c.dtype.type(2)) for c in trial.cotangents)
        _ = trial.first
        # B's gradient is read after the call A again (a copy); B's outputs are not read, and
        # A again is compared at once (check_deterministic copies it before any call after it)
        b = trial.call(other, cotangents_b, held_outputs=False)
        trial._calls = (other, cotangents_b, b, trial.call(held_outputs=False, held_grads=False))
    return trial._calls


def _rolled(a, times=None):
    """``np.roll(a, 1)`` (flattened, then reshaped), times ``times`` where given, in one pass
    and one fresh array."""
    flat, out = a.reshape(-1), np.empty(a.size, a.dtype)
    if a.size:
        if times is None:
            out[1:], out[0] = flat[:-1], flat[-1]
        else:
            np.multiply(flat[:-1], times, out=out[1:])
            out[0] = flat[-1] * times
    return out.reshape(a.shape)


def _first_again(trial: MappingTrial) -> str | None:
    """``_disagreement`` of A's first answer and A's answer after B, made once per trial
    (deterministic and no_state_between_calls both ask; a million-element comparison
    costs a pass or more per tensor)."""
    if getattr(trial, "_first_again", None) is None:
        trial._first_again = (_disagreement(trial, trial.first, _calls(trial)[3]),)
    return trial._first_again[0]


def _stale_answer_is_wrong(trial: MappingTrial, other: MappingCase, cotangents, grads) -> str:
    """Whether ``grads`` (A's answer, returned again for B) is wrong for B, judged like
    vjp_probes judges an answer (the same directions, tolerances and brackets): a
    sentence saying where, or "" where it may be B's true answer too (the gradient of
    a linear map does not depend on its input) or the oracle cannot tell."""
    from harness.checks.mapping_probes import probe_verdicts
    from harness.checks.mapping_trial import float_grads, judged_dtype

    at_b = MappingTrial(trial.mapping, other, probes=trial.probes)
    at_b.cotangents = cotangents
    try:
        for label, p in probe_verdicts(at_b, float_grads(at_b, grads), judged_dtype(at_b, grads)):
            if p.failed:
                return f"along {label}, A's gradient gives {p.have:.9g}, B's forward moves by {p.center:.9g}"
    except ImplementationRaised:  # the float64 forward fails at B: the oracle cannot tell
        return ""
    return ""


def check_no_gradient_for_integer_inputs(trial: MappingTrial) -> CheckResult:
    """Integer inputs (indices, labels) get no gradient: ``None``, or no entry at all."""
    name = "no_gradient_for_integer_inputs"
    ints = [i for i, d in enumerate(trial.case.differentiable) if not d]
    if not ints:
        return trial.result(name, Verdict.SKIP, "no integer inputs")
    answer = trial.first
    if trial.mapping.vjp is None:
        return trial.result(name, Verdict.SKIP, _NO_VJP)
    if answer.grads is None:
        return trial.result(name, Verdict.SKIP, "the vjp's answer cannot be read (see gradient_shapes)")
    wrong = [f"{trial.names[i]} ({trial.case.inputs[i].dtype}) got a {answer.grads[i].dtype} gradient of shape {answer.grads[i].shape}"
             for i in ints if answer.grads[i] is not None]
    if wrong:
        return trial.result(name, Verdict.FAIL, f"{'; '.join(wrong)}; expected None (integer inputs are not differentiable)",
                            hint="return None in that position (torch: return None from backward for index arguments)")
    return trial.result(name, Verdict.PASS)


def _other_case(case: MappingCase) -> MappingCase:
    """``case`` with other values of the same shapes and dtypes: each input's elements
    rolled by one place (no new random draws: at a million elements those cost as much
    as a forward; the values stay in the inputs' domain, kinks and ties included)."""
    inputs = tuple(_rolled(x) for x in case.inputs)
    return MappingCase(inputs, dict(case.params), case.seed, case.label, case.recipe)


def _identical(a, b) -> bool:
    """Every gradient that is not all zero (a zero one may rightly repeat) is the same."""
    telling = [(x, y) for x, y in zip(a, b) if x is not None and np.any(x)]
    return bool(telling) and all(y is not None and x.shape == y.shape and same(x, y) for x, y in telling)


def same(x, y) -> bool:
    """Bitwise-equal values, NaN in the same places counting as equal: the plain
    comparison first (one pass; equal_nan costs three more at 10^6 elements), after
    the first elements alone (arrays that differ there, as two answers to different
    calls do, are told apart without any pass)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape == y.shape and x.size > _HEAD:
        head_x, head_y = x.flat[:_HEAD], y.flat[:_HEAD]
        if not (np.array_equal(head_x, head_y) or np.array_equal(head_x, head_y, equal_nan=True)):
            return False
    return bool(np.array_equal(x, y)) or bool(np.array_equal(x, y, equal_nan=True))


_HEAD = 64  # elements compared first by ``same``


def _disagreement(trial: MappingTrial, a, b) -> str | None:
    """Why two answers to identical calls differ (beyond the declared nondeterminism),
    naming whether the difference is at the level of rounding; ``None`` if they agree."""
    pairs = [(f"output {i}", x, y) for i, (x, y) in enumerate(zip(a.outputs, b.outputs))]
    if a.grads is not None and b.grads is not None:
        pairs += [(f"the gradient of {n}", x, y) for n, x, y in zip(trial.names, a.grads, b.grads)]
    allowed = trial.mapping.nondeterminism
    for label, x, y in pairs:
        if x is None or y is None:
            if (x is None) != (y is None):
                return f"{label} is present in one answer only"
            continue
        if x.shape != y.shape:
            return f"{label} changed shape from {x.shape} to {y.shape}"
        if same(x, y):
            continue
        x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
        peak = float(np.max(np.abs(x64[np.isfinite(x64)]), initial=0.0))
        with np.errstate(invalid="ignore"):
            diff = float(np.max(np.abs(x64 - y64), initial=0.0))
        if allowed and diff <= allowed * peak:
            continue
        level = factor(trial.dtype, "gradient") * eps(trial.dtype) * peak if x.dtype.kind == "f" else 0.0
        kind = "at the level of rounding" if diff <= level else "beyond rounding"
        return f"{label} differs {kind}: max abs difference {diff:.3g} (largest element {peak:.3g})"
    return None


MAPPING_CONTRACT_CHECKS = (
    check_derivatives_are_judged,
    check_outputs_are_finite,
    check_gradient_shapes,
    check_gradient_dtypes,
    check_inputs_not_mutated,
    check_deterministic,
    check_no_state_between_calls,
    check_no_gradient_for_integer_inputs,
)
