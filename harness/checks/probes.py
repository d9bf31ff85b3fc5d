"""Gradient probes: directional derivatives along seeded random sign vectors against
complex-step differentiation of the reference forward, and bisection of a failing
probe down to one tensor and index.

A probe needs only the reference *forward*, so it also guards the reference backprop.
Detection bound: a probe's tolerance is ``16 eps sqrt(sum (scale_i v_i)^2)`` (plus the
kink brackets); one wrong element whose error exceeds it is caught by every probe,
whatever the model size, since a single term cannot cancel; several wrong elements
escape one probe with probability at most 1/2, so k probes miss them with
probability at most 2**-k.
"""

from __future__ import annotations

import math

import numpy as np

from harness.checks.trial import Trial, flat, shapes_ok, tensor_names
from harness.core import oracle
from harness.core.finite_differences import COMPLEX_STEP
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import eps, factor


def check_gradient_probes(trial: Trial) -> CheckResult:
    """Directional derivatives along seeded random sign vectors agree with complex-step
    differentiation of the reference forward; a failing probe is bisected down to one
    tensor and index."""
    name = "gradient_probes"
    result, _ = trial.first
    case, exp = trial.case, trial.expected
    if not shapes_ok(result.grads, case):
        return trial.result(name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    got = [np.asarray(g, np.float64) for g in flat(result.grads)]
    scales, radii, centers = flat(exp.scale), flat(exp.radius), flat(exp.center)
    floors = None if exp.floor is None else flat(exp.floor)
    dtype = trial.judged_dtype(flat(result.grads))
    if trial.probes == 0:
        return trial.result(name, Verdict.SKIP, "no probes asked for (probes=0)")
    rng = np.random.default_rng(trial.probe_seed)
    worst, unsure = 0.0, []
    for k in range(trial.probes):
        signs = [rng.choice(np.array([-1.0, 1.0]), g.shape) for g in got]
        masks = [np.ones(g.shape, bool) for g in got]
        disc, tol, (want, judgeable) = _probe(case, got, scales, radii, signs, masks, dtype, centers, floors)
        if not judgeable:
            unsure.append(f"probe {k}: tolerance {tol:.3g} for a directional derivative of {want:.3g}")
            if not (math.isfinite(tol) and disc > tol):
                continue
        worst = max(worst, disc / tol)
        if disc > tol:
            (tensor, index), d, t = _bisect(case, got, scales, radii, signs, dtype, floors)
            tname = tensor_names(case.spec.n_layers)[tensor]
            idx = tuple(int(i) for i in np.unravel_index(index, got[tensor].shape))
            return trial.result(
                name, Verdict.FAIL,
                f"probe {k} (seed {trial.probe_seed}): directional derivative off by {disc:.3g} (tolerance {tol:.3g}); "
                f"bisection localises it to {tname} [{', '.join(map(str, idx))}] (off by {d:.3g}, tolerance {t:.3g})",
            )
    if unsure:
        return trial.result(name, Verdict.INCONCLUSIVE, f"{len(unsure)} of {trial.probes} probes cannot be judged in {dtype}: "
                                                        f"{unsure[0]}")
    return trial.result(name, Verdict.PASS, f"{trial.probes} probes (seed {trial.probe_seed}), worst at {worst:.2g} of tolerance")


def _probe(case, got, scales, radii, signs, masks, dtype, centers=None, floors=None):
    """|impl's directional derivative - oracle's|, its tolerance (``inf`` where it is not
    finite) and ``(the oracle's derivative, whether the tolerance can judge it)``,
    along signs*masks."""
    v = [s * m for s, m in zip(signs, masks)]
    direction = [(v[i], v[i + 1]) for i in range(0, len(v), 2)]
    want = oracle.directional_derivative(case.spec, case.params, case.x, case.y, direction)
    with np.errstate(all="ignore"):
        have = _total(float(np.dot(g.ravel(), d.ravel())) for g, d in zip(got, v))
        spread = math.sqrt(_total(float(np.sum((s * m) ** 2)) for s, m in zip(scales, masks)))
        bracket = _total(float(np.sum(r * m)) for r, m in zip(radii, masks))
    # The complex step's own truncation error is O(h^2 f'''); (1 + P)^3 h^2 bounds it generously
    # and is still ~1e-183 at the seed size, far below any gradient worth the name.
    support = sum(int(m.sum()) for m in masks)
    truncation = (1 + support) ** 3 * COMPLEX_STEP**2
    # Below the dtype's smallest normal number a gradient element may be flushed to zero
    # (compiled code runs with flush-to-zero): up to tiny per element of the support, so
    # a derivative that small is INCONCLUSIVE in that dtype, never a FAIL of rounding.
    underflow = float(np.finfo(dtype).tiny) * support
    if floors is not None:  # and what flushing can move each element (harness.core.oracle), summed: it need not cancel
        underflow += _total(float(np.sum(f * m)) for f, m in zip(floors, masks))
    rounding = (factor(dtype, "probe") * eps(dtype) * spread + factor("float64", "probe") * eps("float64") * abs(want)
                + underflow)
    tol = rounding + 2 * bracket + truncation
    disc = abs(have - want)
    # The probe cannot be judged where its rounding tolerance is not finite or not below
    # the derivative it judges (a wrong gradient would pass); a derivative within the
    # complex step's truncation is zero, which any tolerance can judge. The derivative's
    # size is taken from both oracles: the complex step itself rounds to 0 where the
    # derivative is below the rounding of the loss (a saturated softmax). The brackets
    # are not rounding: every value inside them is right.
    size = abs(want)
    if centers is not None:
        with np.errstate(all="ignore"):
            size = max(size, abs(_total(float(np.dot(c.ravel(), d.ravel())) for c, d in zip(centers, v))))
    judgeable = math.isfinite(tol) and (size <= truncation or rounding < size)
    # a NaN answer (or an oracle that overflowed) is never within any tolerance
    return (math.inf if math.isnan(disc) else disc), (max(tol, np.finfo(np.float64).tiny) if math.isfinite(tol) else math.inf), \
        (want, judgeable)


def _total(values) -> float:
    """An exact sum (fsum), or the plain one where fsum cannot take it (infinities,
    an intermediate overflow): the result is then infinite or NaN, as it should be."""
    values = list(values)
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return float(sum(values))


def _bisect(case, got, scales, radii, signs, dtype, floors=None):
    """Halve the probe's support, following the half whose discrepancy is largest
    relative to its tolerance, until one element is left: ``((tensor, flat), disc, tol)``."""
    segments = [(t, 0, got[t].size) for t in range(len(got))]
    while True:
        total = sum(stop - start for _, start, stop in segments)
        if total == 1:
            t, start, _ = segments[0]
            disc, tol, _ = _probe(case, got, scales, radii, signs, _masks(got, segments), dtype, floors=floors)
            return (t, start), disc, tol
        scored = []
        for half in split_segments(segments, total // 2):
            disc, tol, _ = _probe(case, got, scales, radii, signs, _masks(got, half), dtype, floors=floors)
            scored.append((disc / tol, half))
        segments = max(scored, key=lambda s: s[0])[1]


def split_segments(segments, count):
    """``(left, right)``: segments ``(tensor, start, stop)`` cut after ``count`` elements."""
    left, right, seen = [], [], 0
    for t, start, stop in segments:
        n = stop - start
        if seen + n <= count:
            left.append((t, start, stop))
        elif seen >= count:
            right.append((t, start, stop))
        else:
            cut = start + (count - seen)
            left.append((t, start, cut))
            right.append((t, cut, stop))
        seen += n
    return left, right


def _masks(got, segments):
    masks = [np.zeros(g.size, bool) for g in got]
    for t, start, stop in segments:
        masks[t][start:stop] = True
    return [m.reshape(g.shape) for m, g in zip(masks, got)]
