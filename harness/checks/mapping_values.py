"""Value checks for a mapping: its forward against a float64 reference, and every
element of its VJP against the float64 oracle (small inputs), to the rounding of the
dtype it computes in; non-differentiable elements by their bracket."""

from __future__ import annotations

import numpy as np

from harness.checks.compare import (
    compare_elementwise,
    compare_tensors,
    failed_elements,
    failing,
    largest_deviation,
    unjudged,
)
from harness.checks.mapping_trial import ELEMENTWISE_LIMIT, MappingTrial, float_grads, judged_dtype, shapes_ok
from harness.core import mapping_hints
from harness.core.mapping_oracle import Expected, expected_forward, expected_vjp, vjp_sensitivity
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import ORACLE_ERROR_FACTOR, mapping_scale, terms_allowance, tolerance
from harness.core.vectors import largest

__all__ = ["ELEMENTWISE_LIMIT"]  # (defined with the trial, which draws its tangents by it; imported from here too)


def check_forward_matches_reference(trial: MappingTrial) -> CheckResult:
    """The forward agrees with the mapping's float64 reference to the dtype's rounding
    (a wrong forward is caught, not only a backward inconsistent with its own). Without
    a reference, a forward run in a coarser dtype than float64 agrees with itself run
    in float64 (the oracle's forward): else a branch on the dtype (tanh(2x) in float32
    only) or an answer cached by shape passed every check, its backward being judged
    against the float64 forward alone."""
    name = "forward_matches_reference"
    reference, against = trial.mapping.reference, "the reference"
    if reference is None:
        if np.dtype(trial.dtype) == np.float64:
            return trial.result(name, Verdict.SKIP, "the mapping gives no reference forward (its float64 forward is the "
                                                    "oracle's own)")
        reference, against = trial.mapping.forward, "the forward in float64"
    got = trial.first.outputs
    floats = [i for i, y in enumerate(trial.oracle_outputs) if y is not None and y.dtype.kind == "f"]
    if len(got) != len(trial.oracle_outputs):
        return trial.result(name, Verdict.FAIL, f"the forward returned {len(got)} outputs, {against} {len(trial.oracle_outputs)}")
    wrong = [f"output {i} has shape {np.shape(got[i])}, {against}'s {np.shape(trial.oracle_outputs[i])}"
             for i in floats if np.shape(got[i]) != np.shape(trial.oracle_outputs[i])]
    if wrong:
        return trial.result(name, Verdict.FAIL, "; ".join(wrong))
    dtype = judged_dtype(trial, [got[i] for i in floats])
    if trial.mapping.reference is None and _within_the_least_tolerance(got, trial.oracle_outputs, floats, dtype):
        return trial.result(name, Verdict.PASS, f"every output element within the least tolerance of {against}")
    expected, sensitivity = expected_forward(reference, trial.case.inputs, trial.case.params, trial.dtype, trial.seed)
    reports, notes = [], []
    for o, i in enumerate(floats):
        g, y = np.asarray(got[i], np.float64), expected[o]
        special = ~np.isfinite(y)
        if special.any():  # inf or NaN in the reference: the answer must match it exactly
            mismatched = int(np.sum(special & ~((g == y) | (np.isnan(g) & np.isnan(y)))))
            if mismatched:
                notes.append(f"output {i}: {mismatched} elements differ where the reference is not finite")
            g, y = np.where(special, 0.0, g), np.where(special, 0.0, y)
        scale = mapping_scale(np.abs(y), np.where(special, 0.0, sensitivity[o]))
        reports.append(compare_elementwise(g, y, 0.0, scale, dtype=dtype, comparison="forward", name=f"output {i}"))
    wrong = failing(reports)
    if wrong or notes:
        messages = notes + [f"{t.n_failed} of {t.n_elements} elements of {t.name} outside tolerance" for t in wrong]
        return trial.result(name, Verdict.FAIL, "; ".join(messages), tensors=reports,
                            hint=mapping_hints.vjp_hint(reports, [got[i] for i in floats], expected, subject="{}"))
    if unjudged(reports):
        return trial.result(name, Verdict.INCONCLUSIVE, unjudged_message(reports, "output"), tensors=reports)
    return trial.result(name, Verdict.PASS, f"{sum(t.n_elements for t in reports)} output elements within tolerance", tensors=reports)


def _within_the_least_tolerance(got, expected, floats, dtype) -> bool:
    """Whether every float output element lies within the smallest tolerance any of its
    tensor's elements is judged with (that of the tensor's largest value, which every
    element's scale includes: ``mapping_scale``), so the elementwise comparison, and the
    rounding sensitivity it needs, can only pass: three passes over a million outputs."""
    # (NaN and infinities fail here: the elementwise comparison sorts them out)
    return all(largest_deviation(got[i], expected[i]) <= tolerance(dtype, "forward", largest(expected[i])) for i in floats)


def unjudged_message(reports, what: str) -> str:
    """``"N of M <what> elements cannot be judged (in tensor: why; ...)"``."""
    unsure = unjudged(reports)
    return (f"{sum(t.n_unjudged for t in unsure)} of {sum(t.n_elements for t in reports)} {what} elements cannot be "
            "judged: " + "; ".join(f"{t.name}: {t.message}" for t in unsure))


def check_vjp_matches_oracle(trial: MappingTrial) -> CheckResult:
    """Every element of the VJP of a seeded random cotangent agrees with the float64
    oracle's J^T c; where an element is not differentiable, it lies in the bracket of
    one-sided derivatives. For inputs up to ELEMENTWISE_LIMIT elements."""
    name = "vjp_matches_oracle"
    skip = vjp_unusable(trial)
    if skip:
        return trial.result(name, Verdict.SKIP, skip)
    n = trial.case.n_float_elements
    if n > ELEMENTWISE_LIMIT:
        return trial.result(name, Verdict.SKIP, f"{n} input elements, beyond the every-element limit of "
                                                f"{ELEMENTWISE_LIMIT}: vjp_probes judges this case")
    return vjp_judgement(trial)[0]


def vjp_judgement(trial: MappingTrial):
    """``(vjp_matches_oracle's result, per input the tolerance each element was judged
    with: None for integer inputs)`` for a case of at most ELEMENTWISE_LIMIT elements,
    computed once per trial: vjp_probes bounds a small case's probes by these."""
    if getattr(trial, "_vjp_judgement", None) is None:
        expected = expected_vjp(trial.differentiator, trial.cotangents)
        trial._vjp_judgement = judge_vjp(trial, "vjp_matches_oracle", float_grads(trial, trial.first.grads), expected,
                                         judged_dtype(trial, trial.first.grads), tolerances=True)
    return trial._vjp_judgement


def vjp_unusable(trial: MappingTrial) -> str:
    """Why the VJP's values cannot be judged (no vjp, unreadable or misshapen), or ""."""
    if trial.mapping.vjp is None:
        return "the mapping gives no vjp"
    answer = trial.first
    if answer.grads is None or not shapes_ok(trial, answer.grads):
        return "the vjp's gradients are missing or misshapen (see gradient_shapes)"
    return ""


def judge_vjp(trial: MappingTrial, name: str, grads, expected: Expected, dtype: str, tolerances: bool = False):
    """Compare gradients (float64, ``None`` for integer inputs) with the oracle's
    elementwise answer: the one judgement behind vjp_matches_oracle and second_order.
    With ``tolerances``, ``(result, per input each element's tolerance)``."""
    result, tols = _judge_vjp(trial, name, grads, expected, dtype)
    return (result, tols) if tolerances else result


def _judge_vjp(trial: MappingTrial, name: str, grads, expected: Expected, dtype: str):
    which = [i for i, g in enumerate(grads) if g is not None]
    names = [trial.names[i] if i < len(trial.names) else f"input {i}" for i in which]
    got = [grads[i] for i in which]
    unresolved = [expected.unresolved[i] for i in which]
    # Elements the oracle could not differentiate (the forward is not finite next to
    # them) cannot be judged: an infinite margin makes them so (never a pass).
    centers = [np.where(u, 0.0, expected.center[i]) for u, i in zip(unresolved, which)]
    radii = [np.where(u, 0.0, expected.radius[i]) for u, i in zip(unresolved, which)]

    # plus the rounding of the cancelling terms the mapping declares (harness.core.tolerances)
    terms = trial.vjp_terms or [None] * len(grads)

    def margins():
        return [np.where(u, np.inf, ORACLE_ERROR_FACTOR * expected.error[i] + expected.allowance[i]
                         + terms_allowance(terms[i], dtype, expected.scale[i])) for u, i in zip(unresolved, which)]

    # Rounding sensitivity and reused outputs only widen tolerances: measured for the
    # elements that would fail without them.
    suspects = [None] * len(grads)
    for i, g, c, r, m in zip(which, got, centers, radii, margins()):
        bad = failed_elements(g, c, r, mapping_scale(expected.scale[i]), dtype=dtype, comparison="gradient", margin=m)
        suspects[i] = np.flatnonzero(bad) if bad.any() else None
    if any(s is not None for s in suspects):
        vjp_sensitivity(trial.differentiator, trial.cotangents, expected, suspects, trial.dtype, trial.seed, judged=dtype)
    scales = [mapping_scale(expected.scale[i], expected.sensitivity[i]) for i in which]
    reports = compare_tensors(names, got, centers, radii, scales, dtype=dtype, comparison="gradient", margins=margins())
    tols = [None] * len(grads)
    for i, scale, margin in zip(which, scales, margins()):
        tols[i] = tolerance(dtype, "gradient", scale) + margin
    n_unresolved = sum(int(u.sum()) for u in unresolved)
    total = sum(t.n_elements for t in reports)
    notes = [f"oracle: {expected.method}"]
    if expected.n_nondifferentiable:
        notes.append(f"{expected.n_nondifferentiable} non-differentiable elements judged by their bracket")
    if n_unresolved:
        notes.append(f"{n_unresolved} elements the oracle cannot differentiate (the forward is not finite next to them)")
    wrong = failing(reports)
    if wrong:
        float32_sized = dtype == "float64" and not failing(compare_tensors(
            names, got, centers, radii, scales, dtype="float32", comparison="gradient", margins=margins()))
        return trial.result(
            name, Verdict.FAIL,
            f"{sum(t.n_failed for t in wrong)} of {total} gradient elements outside tolerance in "
            f"{', '.join(t.name for t in wrong)}; " + "; ".join(notes),
            tensors=reports, hint=mapping_hints.vjp_hint(reports, got, centers, float32_sized=float32_sized)), tols
    if unjudged(reports):
        return trial.result(name, Verdict.INCONCLUSIVE, unjudged_message(reports, "gradient") + "; " + "; ".join(notes),
                            tensors=reports), tols
    return trial.result(name, Verdict.PASS, f"all {total} elements within tolerance; " + "; ".join(notes),
                        tensors=reports), tols


VALUE_CHECKS = (check_forward_matches_reference, check_vjp_matches_oracle)
