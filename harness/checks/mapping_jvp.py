"""Beyond the VJP, where the framework offers them: the JVP against the oracle, the
exact transpose identity between the implementation's own JVP and VJP, and (opt-in)
the backward of the backward."""

from __future__ import annotations

import math

import numpy as np

from harness.checks.compare import failing, judged_elements, largest_deviation, unjudged
from harness.checks.mapping_probes import check_vjp_probes
from harness.checks.mapping_trial import MappingTrial, judged_dtype
from harness.checks.mapping_values import ELEMENTWISE_LIMIT, check_vjp_matches_oracle, unjudged_message, vjp_unusable
from harness.core import mapping_hints
from harness.core.judging import judge
from harness.core.mapping import NotOffered
from harness.core.mapping_cases import MappingCase
from harness.core.mapping_oracle import (
    DRAWS,
    expected_jvp,
    largest_change,
    nearby,
    refine_jvp,
    retaken_jvp_at,
    reuse_along,
    tangent_direction,
)
from harness.core.probing import probe
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import (
    ORACLE_ERROR_FACTOR,
    eps,
    factor,
    mapping_scale,
    sensitivity_step,
    terms_allowance,
    tolerance,
)
from harness.core.vectors import COMPLEX_FLOOR, inner, largest

# An oracle value uncertain by more than this fraction of its scale (its own size plus
# its tensor's largest, as in the tolerance; e.g. its steps straddle a kink) is taken again
# (complex step, brackets, smaller steps). Below it, its error widens the tolerance by at
# most ORACLE_ERROR_FACTOR * 1e-6 of the scale, so a float64 JVP off by 1e-5 still fails
# everywhere; Richardson's usual error (1e-7 relative with 3 levels, 1e-11 with 4) stays
# under it, so a million elements are not taken again (20 forward evaluations) for nothing.
BLURRED = 1e-6


def _tangent_outputs(trial: MappingTrial):
    """``(tangents out, why not)`` of the implementation's JVP along the trial's tangents."""
    out, _, _, why = trial.first_jvp
    if out is None:
        return None, why
    outputs = trial.oracle_outputs
    if len(out) != len(outputs) or any(y is not None and y.dtype.kind == "f" and (t is None or np.shape(t) != y.shape)
                                       for t, y in zip(out, outputs)):
        return None, "the jvp's tangents are missing or misshapen (see gradient_shapes)"
    return out, ""


def check_jvp_matches_oracle(trial: MappingTrial) -> CheckResult:
    """Every element of the JVP of a seeded random tangent agrees with the oracle's
    directional derivative J u (brackets where an output is not differentiable)."""
    name = "jvp_matches_oracle"
    out, why = _tangent_outputs(trial)
    if out is None:
        return trial.result(name, Verdict.SKIP, why)
    diff = trial.differentiator
    small = trial.case.n_float_elements <= ELEMENTWISE_LIMIT  # the complex step is cheap there
    floats = diff.float_outputs
    got = [np.asarray(out[i], np.float64) for i in floats]
    names = [f"output {i}" for i in floats]
    dtype = judged_dtype(trial, [out[i] for i in floats])
    # ... or already paid for: vjp_probes took it along this very direction
    unit, direction = tangent_direction(diff, trial.tangents)
    kept = diff.kept_complex(direction)
    quick = ""
    if not small and kept and trial.jvp_terms is None:  # the complex step's values, kept: exact
        quick = _within_the_least_tolerance(got, [v / unit for v in diff.complex_right(direction)], dtype)
    if quick:
        return trial.result(name, Verdict.PASS, f"{quick}; oracle: {diff.method}")
    expected = expected_jvp(diff, trial.tangents, exact=small or kept)
    declared = [None] * len(floats) if trial.jvp_terms is None else [trial.jvp_terms[i] for i in floats]

    def compare():
        """The reports, and per output the elements that fail or whose oracle value is too
        uncertain to judge them (its steps straddle a kink: relu over 10^5 elements has a
        few within them)."""
        reports, picks = [], []
        for label, g, c, r, s, v, e, a, u, t in zip(names, got, expected.center, expected.radius, expected.scale,
                                                     expected.sensitivity, expected.error, expected.allowance,
                                                     expected.unresolved, declared):
            # an element the oracle cannot differentiate: an infinite margin, so it cannot be judged
            # (the masks, and the allowances' zeros, skipped where they change nothing: passes
            # over a million elements)
            unknown, blurry = bool(u.any()), bool(np.any(e))  # (no error anywhere: the complex step's values)
            center, scale = np.where(u, 0.0, c) if unknown else c, mapping_scale(s, v, floor_over=s)
            # (the complex step's values: exact, down to what it resolves)
            margin = ORACLE_ERROR_FACTOR * (e if blurry else COMPLEX_FLOOR)
            if np.any(a):
                margin = margin + a
            if t is not None:
                margin += terms_allowance(t, dtype, s)
            report, failed = judged_elements(g, center, r, scale, dtype=dtype, comparison="gradient", name=label,
                                             margin=np.where(u, np.inf, margin) if unknown else margin)
            bad = failed | ~(e <= BLURRED * scale) if blurry else failed  # exact values: no error to blur them
            reports.append(report)
            picks.append(np.flatnonzero(bad) if bad.any() else None)
        return reports, picks

    def take_exact(picks):
        for o, (p, exact) in enumerate(zip(picks, retaken_jvp_at(diff, trial.tangents, picks))):
            if p is not None:
                for field in ("center", "scale", "error", "unresolved"):
                    getattr(expected, field)[o].flat[p] = exact[field]

    def take_small_steps(picks):
        """Blurred elements taken again by Richardson from steps below the kinks' spacing
        (no evaluation where a probe along this direction took them), kept where the
        error stays within the element's own tolerance (so that it at most doubles it,
        as a probe's Richardson value may) and below BLURRED: a float32 relu's elements
        next to a kink. What is left goes to the complex step; the picks left."""
        left = []
        for o, (p, again) in enumerate(zip(picks, retaken_jvp_at(diff, trial.tangents, picks, exact=False))):
            if p is None:
                left.append(None)
                continue
            top = float(np.max(expected.scale[o], initial=0.0))  # mapping_scale's floor (the tensor's largest)
            scale = again["scale"] + expected.sensitivity[o].flat[p] + top
            with np.errstate(invalid="ignore"):
                ok = ~again["unresolved"] & (ORACLE_ERROR_FACTOR * again["error"] <= tolerance(dtype, "gradient", scale)) \
                    & (again["error"] <= BLURRED * scale)
            for field in ("center", "scale", "error", "unresolved"):
                getattr(expected, field)[o].flat[p[ok]] = again[field][ok]
            left.append(p[~ok] if not ok.all() else None)
        return left

    # Brackets and sensitivities only widen: computed for the elements that fail without
    # them (or that the first oracle value cannot judge); for blurred values, before any
    # comparison (which costs more than an evaluation over a million elements), first
    # Richardson from steps below the kinks' spacing (take_small_steps: a real forward,
    # where the complex one costs 13 of relu's and its detection 4 more); then the complex
    # step where the forward allows it (one evaluation, exact, also next to a kink that
    # Richardson's steps cross), then both sides' bracket, looked at again with smaller steps.
    blurred = [np.flatnonzero(b) if b is not None and b.any() else None for b in
               (~(e <= BLURRED * mapping_scale(s, v, floor_over=s)) if np.any(e) else None
                for e, s, v in zip(expected.error, expected.scale, expected.sensitivity))]
    if any(p is not None for p in blurred) and not small:
        blurred = take_small_steps(blurred)
    if any(p is not None for p in blurred) and not small and diff.complex_ok:
        take_exact(blurred)
    elif not small and trial.jvp_terms is None and all(p is None for p in blurred) and not any(u.any() for u in expected.unresolved):
        # every value resolved (none blurred, none left unresolved; no bracket or sensitivity yet)
        quick = _within_the_least_tolerance(got, expected.center, dtype, expected.scale, expected.error)
        if quick:
            return trial.result(name, Verdict.PASS, f"{quick}; oracle: {expected.method}")
    reports, picks = compare()
    if any(p is not None for p in picks) and not small and diff.complex_ok:
        take_exact(picks)
        reports, picks = compare()
    if any(p is not None for p in picks):
        refine_jvp(diff, trial.tangents, expected, picks, trial.dtype, trial.seed, judged=dtype)
        add_tangent_rounding(diff, trial.tangents, expected, picks, trial.seed)
        reports, _ = compare()
    note = f"oracle: {expected.method}"
    if expected.n_nondifferentiable:
        note += f"; {expected.n_nondifferentiable} non-differentiable output elements judged by their bracket"
    wrong = failing(reports)
    if wrong:
        centers = [np.where(u, 0.0, c) for u, c in zip(expected.unresolved, expected.center)]  # (for the hint)
        return trial.result(name, Verdict.FAIL,
                            f"{sum(t.n_failed for t in wrong)} JVP elements outside tolerance in "
                            f"{', '.join(t.name for t in wrong)}; {note}",
                            tensors=reports, hint=mapping_hints.vjp_hint(reports, got, centers, subject="the JVP's {}"))
    if unjudged(reports):
        return trial.result(name, Verdict.INCONCLUSIVE, f"{unjudged_message(reports, 'JVP')}; {note}", tensors=reports)
    return trial.result(name, Verdict.PASS, f"all {sum(t.n_elements for t in reports)} JVP elements within tolerance; {note}",
                        tensors=reports)


def _within_the_least_tolerance(got, centers, dtype, scales=None, errors=None) -> str:
    """Over a large input, before any bracket or sensitivity is taken: a PASS message if
    every element lies within the least tolerance any element of its output is judged
    with (that of the output's largest scale, which every element's scale includes:
    ``mapping_scale``; ``scales`` default ``|centers|``), and the most any may get (twice
    that scale, plus the oracle's largest error, ``errors``, or the complex step's floor
    where the values are its own) is still below it, so that none is unjudged; else ""
    and the elementwise comparison decides. A few passes over a million elements where
    that comparison takes twenty; what it passes, the comparison passes too (its
    tolerances are no smaller, and a margin only widens them)."""
    worst = []
    for o, (g, center) in enumerate(zip(got, centers)):
        with np.errstate(all="ignore"):
            top = largest(center) if scales is None else float(np.max(scales[o], initial=0.0))
        off = largest_deviation(g, center)
        error = COMPLEX_FLOOR if errors is None else max(COMPLEX_FLOOR, float(np.max(errors[o], initial=0.0)))
        least = float(tolerance(dtype, "gradient", top))
        most = float(tolerance(dtype, "gradient", 2 * top)) + ORACLE_ERROR_FACTOR * error
        # (a center not finite leaves a deviation that is not: inf - inf and NaN fail here)
        if not (off <= least and most < top):
            return ""
        worst.append(f"{off:.3g} off at most, least tolerance {least:.3g}")
    return (f"all {sum(g.size for g in got)} JVP elements within the least tolerance of their output "
            f"({'; '.join(worst)})")


def add_tangent_rounding(diff, tangents, expected, picks, seed: int) -> None:
    """For the output elements ``picks`` (per output, flat indices or ``None``): the JVP's
    rounding of its own sum over the tangent's terms ``J_jk u_k``, added to their rounding
    sensitivity, measured as the inputs' one is: how far ``J u`` moves when the tangent's
    elements move by their rounding with random signs, ``|J (u * r)|`` (the largest of
    ``DRAWS`` draws). A sum that cancels is rounded at its terms' size, which neither
    ``|J u|`` nor the inputs' sensitivity sees: one pooling window whose tangents nearly
    cancel (J u = -0.0022 from terms of 0.3; a linear map does not move with its inputs)
    failed a right float64 JVP off by 2e-17. Elements judged by a bracket keep theirs."""
    unit, direction = tangent_direction(diff, tangents)
    wanted = [np.zeros(0, int) if p is None else p for p in picks]
    rng = np.random.default_rng(seed + 8191)
    draws = []
    for _ in range(DRAWS):
        signed = [None if w is None else w * rng.choice(np.array([-1.0, 1.0]), w.shape) for w in direction]
        if diff.complex_ok:  # one evaluation per draw
            draws.append([np.ravel(v)[p] for v, p in zip(diff.complex_right(signed), wanted)])
        else:
            draws.append([row[0] for row in judge(diff.sides_many([signed], levels=3, pick=wanted)).center])
    for o, p in enumerate(picks):
        if p is None:
            continue
        with np.errstate(invalid="ignore"):
            change = np.max([np.abs(d[o]) for d in draws], axis=0) / unit
        change = np.where(np.isnan(change), np.inf, change)  # (not measured: not ruled out either)
        here = expected.sensitivity[o].flat[p]
        expected.sensitivity[o].flat[p] = np.where(expected.radius[o].flat[p] > 0, here, here + change)


def check_jvp_vjp_transpose(trial: MappingTrial) -> CheckResult:
    """The implementation's own JVP and VJP are transposes of each other:
    <u, VJP(v)> = <JVP(u), v> to rounding, with no finite differences in the
    comparison, so it sees inconsistencies far below any difference step."""
    name = "jvp_vjp_transpose"
    skip = vjp_unusable(trial)
    if skip:
        return trial.result(name, Verdict.SKIP, skip)
    out, why = _tangent_outputs(trial)
    if out is None:
        return trial.result(name, Verdict.SKIP, why)
    grads, u, v = trial.first.grads, trial.tangents, trial.cotangents
    lhs_terms = [(t, g) for t, g in zip(u, grads) if t is not None]
    rhs_terms = [(w, c) for w, c in zip(out, v) if c is not None]
    # float64 dot products (harness.core.vectors.inner): one pass each, no temporaries
    lhs = math.fsum(inner(t, g) for t, g in lhs_terms)
    rhs = math.fsum(inner(w, c) for w, c in rhs_terms)
    dtype = judged_dtype(trial, list(grads) + list(out))
    # Each answer element may carry eps times its tensor's largest value (the floor of
    # harness.core.tolerances); over a sum these add like independent roundings.
    spread = math.sqrt(math.fsum(largest(g) ** 2 * inner(t, t) for t, g in lhs_terms)) + \
        math.sqrt(math.fsum(largest(w) ** 2 * inner(c, c) for w, c in rhs_terms))
    # Plus, for the terms the mapping declares, each element's own allowance, weighed by |u|
    # (|v|) and summed worst case (harness.core.tolerances)
    declared = math.fsum(float(np.sum(np.abs(t) * terms_allowance(d, dtype)))
                         for t, d in zip(u, trial.vjp_terms or ()) if d is not None and t is not None) + \
        math.fsum(float(np.sum(np.abs(c) * terms_allowance(d, dtype)))
                  for c, d in zip(v, trial.jvp_terms or ()) if d is not None and c is not None)
    f = factor(dtype, "transpose")
    tol = f * eps(dtype) * spread + declared + f * float(np.finfo(dtype).smallest_normal)
    if not abs(lhs - rhs) <= tol:  # the widenings can only widen: measured only when needed
        tol += _transpose_widening(trial, dtype)
    text = f"<u, VJP(v)> = {lhs:.12g}, <JVP(u), v> = {rhs:.12g}: off by {abs(lhs - rhs):.3g} (tolerance {tol:.3g})"
    if not abs(lhs - rhs) <= tol:
        return trial.result(name, Verdict.FAIL, text,
                            hint="the JVP and the VJP are not transposes of each other: one of them is wrong "
                                 "(jvp_matches_oracle and vjp_matches_oracle / vjp_probes say which)")
    # Inner products below the underflow floor are zero to this dtype (as the
    # oracle's own exact zeros are): judged, not "cannot be judged"
    size = max(abs(lhs), abs(rhs))
    if size <= f * float(np.finfo(dtype).smallest_normal):
        size = 0.0
    if not np.isfinite(tol) or (size > 0 and tol >= size):
        return trial.result(name, Verdict.INCONCLUSIVE, f"cannot be judged in {dtype}: the tolerance is not below "
                                                        f"the inner products it compares; {text}")
    return trial.result(name, Verdict.PASS, text)


def _transpose_widening(trial: MappingTrial, dtype) -> float:
    """How far <c, J u> may be off beyond the rounding of the inner products: its
    rounding sensitivity (how far it moves when the inputs move by their rounding, per
    unit of relative perturbation: what a backward-stable implementation may be off by)
    times the tolerance's ``factor * eps``, plus the allowance for reused outputs."""
    diff = trial.differentiator
    unit, direction = tangent_direction(diff, trial.tangents)
    exact = diff.complex_ok and trial.case.n_float_elements <= ELEMENTWISE_LIMIT
    here, _ = probe(diff, trial.cotangents, direction, exact=exact)
    there = [probe(other, trial.cotangents, direction, exact=exact)[0] / unit for other in nearby(diff, trial.dtype, trial.seed)]
    moved = float(largest_change(there, here / unit, sensitivity_step(trial.dtype)))
    return factor(dtype, "transpose") * eps(dtype) * moved + reuse_along(diff, trial.cotangents, direction, dtype) / unit


def check_second_order(trial: MappingTrial) -> CheckResult:
    """(Opt-in.) The backward of the backward: the map (inputs, cotangents) -> VJP,
    checked as a mapping whose own VJP the framework supplies (torch double backward,
    jax), against the float64 oracle of that map."""
    name = "second_order"
    if not trial.second_order:
        return trial.result(name, Verdict.SKIP, "opt-in: harness.check(..., second_order=True) or --second-order")
    if trial.mapping.second_order is None:
        return trial.result(name, Verdict.SKIP, "the mapping gives no second-order backward")
    if trial.case.label == "large":
        # Far in an activation's tail a float64 first-order backward cancels (jax's
        # gelu'' at x = 6 is 2e-6 relative off), and the oracle differentiates that very
        # backward: neither side's rounding is bounded by the tolerance model here.
        return trial.result(name, Verdict.SKIP, "not at large magnitudes: the float64 backward that the oracle "
                                                "differentiates loses digits in activation tails")
    try:
        derived = trial.mapping.second_order(len(trial.case.inputs))
    except NotOffered as exc:
        return trial.result(name, Verdict.SKIP, f"the framework offers no second-order backward here: {exc}")
    cotangents = [c for c in trial.cotangents if c is not None]
    case = MappingCase(tuple(trial.case.inputs) + tuple(cotangents), dict(trial.case.params), trial.seed,
                       f"{trial.case.label}, backward of the backward")
    inner = MappingTrial(derived, case, probes=trial.probes)
    inner.names = list(trial.names) + [f"cotangent {i}" for i in range(len(cotangents))]
    check = check_vjp_matches_oracle if case.n_float_elements <= ELEMENTWISE_LIMIT else check_vjp_probes
    result = check(inner)
    return trial.result(name, result.verdict, f"the backward of the backward ({result.check}): {result.message}",
                        tensors=result.tensors, hint=result.hint)


JVP_CHECKS = (check_jvp_matches_oracle, check_jvp_vjp_transpose, check_second_order)
