"""VJP probes for a mapping of any size: ``<VJP(c), w>`` against the oracle's
directional derivative ``d/dt <c, f(x + t w)>``, never a Jacobian, and bisection of
a failing probe down to one input and index.

Directions: ``probes`` seeded Rademacher directions, each scaled per element by its
input's spread (``w = s * u``); before them, for a case small enough to be judged
element by element, the all-ones direction, where every tie moves together, so that a
gradient routed to every tied element (which passes each element's bracket: the valid
total of a tie is the one cotangent) is caught for certain. A random direction catches
it too, with probability 1/2 (the tied pair's signs agree), so the bound below holds
without it: at a million elements it would cost a sixth of the probes for nothing.

Detection bound. Write ``E = g - g*`` for the cotangent c. For Rademacher signs u and
fixed positive weights s, ``<E, s u> = s_k u_k E_k + R`` with R independent of u_k, so
for any k at least one sign of u_k gives ``|<E, s u>| >= s_k |E_k|``: one probe
misses an error whose largest weighted element exceeds the probe's tolerance (and
bracket) with probability at most 1/2, and m probes with at most 2^-m (over a large
input with a JVP, the JVP check's tangent is one of the m: Rademacher signs times
positive weights of its own, drawn from its own seed). The cotangent
has independent elements of a bounded density (``uniform_unit``), so a wrong
backward's error ``E = (J_impl - J)^T c`` is a continuous variable: smaller than delta
times its typical size with probability of the order of delta.

Tolerance of a probe: ``factor * eps * (A + sensitivity)`` plus the oracle's error
and, where an output is not differentiable along w, its bracket. ``A`` sums the
elementwise floor of ``harness.core.tolerances`` over the probe, ``sqrt(sum_t
max|g_t|^2 |w_t|^2)``: each element may carry eps times its tensor's largest value,
and these add like independent roundings. The sensitivity is measured once per check
on the first random direction (the directions are identically distributed): how far
the oracle's value moves when the inputs move by their rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.checks.mapping_trial import MappingTrial, float_grads, judged_dtype
from harness.checks.mapping_values import ELEMENTWISE_LIMIT, judge_vjp, vjp_judgement, vjp_unusable
from harness.checks.probes import split_segments
from harness.core.mapping_oracle import (
    _float_cotangents,
    expected_vjp,
    largest_change,
    nearby,
    reuse_along,
)
from harness.core.probing import probe, probe_bracket, probe_steps
from harness.core.results import CheckResult, Coordinate, TensorReport, Verdict
from harness.core.tolerances import ORACLE_ERROR_FACTOR, eps, factor, sensitivity_step, terms_allowance
from harness.core.vectors import inner, largest, signed


class _Prober:
    """Everything one probe needs: the gradients, the oracle, the tolerance's parts."""

    def __init__(self, trial: MappingTrial, grads, dtype, own: bool = False):
        self.trial, self.diff, self.dtype = trial, trial.differentiator, dtype
        self.grads = grads
        self.own = own  # grads are the trial's own first answer (whose elementwise judgement is shared)
        self._tolerances = None
        self.floors = [0.0 if g is None else largest(g) for g in grads]
        self._norms_of = (None, None)  # (direction, its norms): each is asked for several times
        self.signed_directions = []  # directions that are the scales with signs (see _norms)
        self._scale_norms = None
        self.sensitivity = None  # measured when a probe would fail without it
        # Richardson levels: 3 resolve a probe to about 1e-7 of its size, far below float32
        # rounding; float64 takes 4 (about 1e-11)
        self.levels = 3 if np.finfo(dtype).eps > 1e-10 else 4
        self.exact = False  # use the complex step (Richardson cannot resolve this mapping's probes)
        self.small_first = False  # the last probe took the steps below the kinks' spacing

    def elementwise_tolerances(self) -> list:
        """Per input, the tolerance each element of ``grads`` is judged with elementwise."""
        if self._tolerances is None:
            trial = self.trial
            if self.own:
                self._tolerances = vjp_judgement(trial)[1]
            else:
                expected = expected_vjp(self.diff, trial.cotangents)
                self._tolerances = judge_vjp(trial, "vjp_probes", self.grads, expected, self.dtype, tolerances=True)[1]
        return self._tolerances

    def have(self, direction) -> float:
        return math.fsum(inner(g, w) for g, w in zip(self.grads, direction) if g is not None)

    def _norms(self, direction) -> tuple[float, float]:
        """``(sqrt(sum_t max|g_t|^2 |w_t|^2), sum |w|)`` of a direction, computed once; the
        same for every one of ``directions`` (the scales with signs: one |w|)."""
        if self._norms_of[0] is not direction:
            whole = self.diff.scales if any(direction is d for d in self.signed_directions) else direction
            if whole is self.diff.scales and self._scale_norms is not None:
                norms = self._scale_norms
            else:
                # an input whose every scale is k: n k^2 and n k, without two passes over it
                constants = self.diff.constant_scales if whole is self.diff.scales else [None] * len(whole)
                spread = math.sqrt(math.fsum(f * f * (inner(w, w) if k is None else w.size * k * k)
                                             for f, w, k in zip(self.floors, whole, constants) if w is not None))
                weight = math.fsum((float(np.abs(w).sum()) if k is None else w.size * abs(k))
                                   for g, w, k in zip(self.grads, whole, constants) if g is not None and w is not None)
                norms = (spread, weight)
                if whole is self.diff.scales:
                    self._scale_norms = norms
            self._norms_of = (direction, norms)
        return self._norms_of[1]

    def spread(self, direction) -> float:
        """``sqrt(sum_t max|g_t|^2 |w_t|^2)``: the probe's natural size (see the module)."""
        return self._norms(direction)[0]

    def rounding(self, direction) -> float:
        f = factor(self.dtype, "probe")
        spread, weight = self._norms(direction)
        # plus the underflow floor of harness.core.tolerances for every element the probe weighs
        floor = f * float(np.finfo(self.dtype).smallest_normal) * weight
        return f * eps(self.dtype) * (spread + (self.sensitivity or 0.0)) + floor

    def want(self, direction):
        """``(value, error)`` of the oracle's right-hand derivative; the complex step
        where Richardson's error would dominate the tolerance and the forward allows it."""
        c = self.trial.cotangents
        if not self.exact:
            # smaller steps only where Richardson's error would matter against the tolerance;
            # tried first along the random directions once a probe needed them
            alike = any(direction is d for d in self.signed_directions)
            value, error, small = probe_steps(self.diff, c, direction, levels=self.levels,
                                              enough=self.rounding(direction) / ORACLE_ERROR_FACTOR,
                                              small_first=alike and self.small_first)
            self.small_first = small
            if ORACLE_ERROR_FACTOR * error <= self.rounding(direction) or not self._complex_worth_it(value, error, direction):
                return value, error
            self.exact = True
        return probe(self.diff, c, direction, exact=True)

    def _complex_worth_it(self, value, error, direction) -> bool:
        """Whether to pay for the complex step where Richardson's error would dominate
        the tolerance: always for a small input (it is cheap there); for a large one
        (a complex forward can cost 10-30 real ones) only where Richardson's error
        exceeds 1e-7 of the value (kinks everywhere, as relu's over a million
        elements), so that otherwise a float64 probe's resolution is Richardson's."""
        small = self.trial.case.n_float_elements <= ELEMENTWISE_LIMIT
        scale = max(abs(value), self.spread(direction))
        if not (small or not np.isfinite(error) or ORACLE_ERROR_FACTOR * error > 1e-7 * scale):
            return False
        # the complex step cross-checked against this very value where it is resolved well
        # enough (the JVP check's tangent, over a large input): no evaluations of its own
        self.diff.detect_complex_along(direction, _float_cotangents(self.diff, self.trial.cotangents), value, error)
        return self.diff.complex_ok

    def measure_sensitivity(self):
        """How far the oracle's probe value moves when the inputs move by their rounding,
        along one fixed random direction (the probes' directions are identically
        distributed), per unit of relative perturbation."""
        trial = self.trial
        direction = [d for label, d in directions(trial, self.diff, 1) if label not in (ALL_ONES, TANGENT)][0]
        here, _ = self.want(direction)
        there = [probe(other, trial.cotangents, direction, exact=self.exact)[0]
                 for other in nearby(self.diff, trial.dtype, trial.seed)]
        self.sensitivity = float(largest_change(there, here, sensitivity_step(trial.dtype)))

    def judge(self, direction) -> Probe:
        """One probe: against the right-hand derivative, then against both sides'
        bracket; only where both miss, with the tolerance widened by the rounding
        sensitivity and the allowance for reused outputs (they can only widen)."""
        have = self.have(direction)
        value, error = self.want(direction)
        probe = self._against(have, value, error, direction, self.rounding(direction))
        if probe.failed:
            rounding = self.widened(direction)
            probe = self._against(have, value, error, direction, rounding, probe)
        return probe

    def _against(self, have, value, error, direction, rounding, earlier=None) -> Probe:
        tol = rounding + ORACLE_ERROR_FACTOR * error
        if abs(have - value) <= tol:
            return Probe(0.0, have, value, 0.0, tol, abs(value))
        bracket = earlier.bracket if earlier is not None and earlier.bracket is not None else \
            probe_bracket(self.diff, self.trial.cotangents, direction)
        center, radius, error = bracket
        tol = rounding + ORACLE_ERROR_FACTOR * error
        if not np.isfinite(center):  # the forward is not finite nearby: nothing can be said
            return Probe(0.0, have, value, 0.0, math.inf, abs(value), bracket)
        excess = abs(have - center) - radius - tol
        return Probe(excess if excess > 0 or math.isnan(excess) else 0.0, have, center, radius, tol,
                     max(abs(value), abs(center)), bracket)

    def widened(self, direction) -> float:
        """The tolerance's rounding part where the plain one would fail the probe. A small
        case: the |w|-weighted sum of the tolerances each element is judged with
        (vjp_matches_oracle's): each element's error is within its own, so the probe's is
        within that sum. A large one: ``rounding`` plus the rounding sensitivity
        (measured once) and the allowance for reused outputs, taken along the direction
        with seeded random signs: a coupled map's derivative can cancel along the
        probe's own direction (softmax's along all-ones is 0 whatever each element's
        rounding), not along random signs; and the |w|-weighted allowance of the terms the
        mapping declares (``terms_allowance``)."""
        if self.trial.case.n_float_elements <= ELEMENTWISE_LIMIT:
            tolerances = self.elementwise_tolerances()
            return max(self.rounding(direction), math.fsum(
                inner(np.abs(w), t) for w, t in zip(direction, tolerances) if w is not None and t is not None))
        if self.sensitivity is None:
            self.measure_sensitivity()
        rng = np.random.default_rng(self.trial.seed + 29)
        flipped = [None if w is None else signed(rng, w) for w in direction]
        declared = math.fsum(inner(np.abs(w), terms_allowance(t, self.dtype))  # (harness.core.tolerances)
                             for w, t in zip(direction, self.trial.vjp_terms or ()) if w is not None and t is not None)
        return self.rounding(direction) + reuse_along(self.diff, self.trial.cotangents, flipped, self.dtype) + declared


@dataclass(frozen=True)
class Probe:
    """One probe's outcome: how far ``have`` (the VJP's projection) lies beyond the
    tolerance around the oracle's ``center`` (and its bracket ``+- radius``; 0 within),
    and the ``size`` of the directional derivative it judges."""

    excess: float
    have: float
    center: float
    radius: float
    tol: float
    size: float
    bracket: tuple | None = None  # (center, radius, error) of both sides, where it was needed

    @property
    def failed(self) -> bool:
        return not self.excess <= 0


def unjudged_probes(probes) -> list:
    """The probes a tolerance cannot judge (issue 13's rule, as for elements): one whose
    tolerance is not finite, or not below the largest derivative of the probes judged
    together (as an element's is held against its tensor's largest expected value):
    there a wrong gradient, all zeros say, would pass too."""
    magnitude = max((p.size for p in probes if math.isfinite(p.size)), default=0.0)
    return [p for p in probes if not math.isfinite(p.tol) or (magnitude > 0 and p.tol >= magnitude)]


def directions(trial: MappingTrial, diff, count: int | None = None):
    """``(label, direction)``: for a small case the all-ones direction; then ``count``
    (default: the trial's) seeded Rademacher directions, each scaled by the inputs'
    spreads, on which the module's bound rests; and, where the mapping has a JVP, the
    JVP check's tangent direction (a probe whose evaluations that check reuses): last
    for a small case (an extra probe: its tangent is continuous), first for a large one,
    where its tangent has Rademacher signs too and counts as one of the trial's probes
    (one random direction fewer; its Richardson evaluations are kept for the JVP check
    anyway, so the random directions learn from it, not from one of their own, whether
    the usual tableau resolves a probe); one at a time."""
    small = trial.case.n_float_elements <= ELEMENTWISE_LIMIT
    counted = 0  # the tangent, where it is one of the Rademacher probes (a large case's: see MappingTrial.tangents)
    if small:
        yield ALL_ONES, [None if s is None else s.copy() for s in diff.scales]
    elif trial.mapping.jvp is not None and count is None:
        yield TANGENT, diff.shared(trial.tangents)
        counted = min(1, trial.probes)
    rng = np.random.default_rng(trial.seed + 17)
    for k in range((trial.probes - counted) if count is None else count):
        yield f"random direction {k + 1} (seed {trial.seed + 17})", [None if s is None else signed(rng, s, constant)
                                                                    for s, constant in zip(diff.scales, diff.constant_scales)]
    # a small case's last: by then the probes know whether they take the complex step, so
    # the shared direction is not first differenced with Richardson for nothing (its
    # evaluations are kept for the JVP check, in fresh arrays, not the reused buffers)
    if small and trial.mapping.jvp is not None and count is None:
        yield TANGENT, diff.shared(trial.tangents)


ALL_ONES = "the all-ones direction"
TANGENT = "the JVP check's tangent direction"


def _signed_like_scales(label) -> bool:
    """Whether the direction so labelled is the scales with signs (one |w| for all)."""
    return label != TANGENT


def probe_verdicts(trial: MappingTrial, grads, dtype):
    """``(label, Probe)`` for each probe direction of ``trial``, judging ``grads`` (float64,
    ``None`` for integer inputs) computed in ``dtype``; lazily, one direction at a time."""
    prober = _Prober(trial, grads, dtype)
    for label, direction in directions(trial, prober.diff):
        prober.signed_directions = [direction] if _signed_like_scales(label) else []
        yield label, prober.judge(direction)


def check_vjp_probes(trial: MappingTrial) -> CheckResult:
    """Directional derivatives of the forward along the all-ones direction and seeded
    random sign directions agree with the VJP's projections (any input size); a
    failing probe is bisected to one input and index. A probe whose tolerance is not
    below the derivative it judges cannot be judged: the check is then INCONCLUSIVE,
    never a PASS."""
    name = "vjp_probes"
    skip = vjp_unusable(trial)
    if skip:
        return trial.result(name, Verdict.SKIP, skip)
    grads = float_grads(trial, trial.first.grads)
    prober = _Prober(trial, grads, judged_dtype(trial, trial.first.grads), own=True)
    judged = []
    for label, direction in directions(trial, prober.diff):
        prober.signed_directions = [direction] if _signed_like_scales(label) else []
        p = prober.judge(direction)
        judged.append((label, p))
        if p.failed:
            report, where = _bisect(prober, direction)
            bracket = f" (bracket +-{p.radius:.3g})" if p.radius else ""
            joint = label == ALL_ONES and report is not None and report.verdict is Verdict.PASS
            hint = ("no single element is wrong, but their sum disagrees with how the output moves when every input "
                    "moves together: at a tie, the gradient routed to every tied element instead of one (or split)?"
                    if joint else "")
            return trial.result(
                name, Verdict.FAIL,
                f"along {label}: <VJP(c), w> = {p.have:.9g}, but the forward's derivative is "
                f"{p.center:.9g}{bracket} (off by {abs(p.have - p.center):.3g}, tolerance {p.tol:.3g}); {where}",
                tensors=[report] if report else [], hint=hint)
    method = "complex step" if prober.exact else "Richardson"
    unsure = unjudged_probes([p for _, p in judged])
    if unsure:
        label, p = next((label, p) for label, p in judged if p is unsure[0])
        largest = max((q.size for _, q in judged if math.isfinite(q.size)), default=math.nan)
        return trial.result(name, Verdict.INCONCLUSIVE, f"{len(unsure)} of {len(judged)} probes cannot be judged in "
                                                        f"{prober.dtype}: along {label}, tolerance {p.tol:.3g}, but the "
                                                        f"largest derivative probed is {largest:.3g}")
    # (0 where every probe lies inside its bracket: how far inside is no measure of agreement)
    worst = max([0.0] + [(abs(p.have - p.center) - p.radius) / p.tol for _, p in judged if p.tol > 0])
    return trial.result(name, Verdict.PASS, f"{len(judged)} probes ({method}), worst at {worst:.2g} of tolerance")


def _bisect(prober: _Prober, direction):
    """Halve the probe's support, following the half whose discrepancy is worst
    against its tolerance, down to one element: ``(TensorReport, words)``."""
    segments = [(t, 0, w.size) for t, w in enumerate(direction) if w is not None and w.size]
    # The discrepancy of the whole, then of the left half: the right half's is their
    # difference (both sides are linear in the direction, away from kinks), so one
    # oracle evaluation per level. The right-hand derivative alone: bisection only
    # chooses the worse half; brackets would cost 8 evaluations and a pass per level.
    whole_value, whole_error = prober.want(_masked(direction, segments))
    whole_have = prober.have(_masked(direction, segments))
    while sum(stop - start for _, start, stop in segments) > 1:
        total = sum(stop - start for _, start, stop in segments)
        left, right = split_segments(segments, total // 2)
        masked = _masked(direction, left)
        value, error = prober.want(masked)
        have = prober.have(masked)
        scored = []
        for half, h, v, e in ((left, have, value, error), (right, whole_have - have, whole_value - value, whole_error + error)):
            tol = _segment_rounding(prober, direction, half) + ORACLE_ERROR_FACTOR * e
            off = abs(h - v)
            scored.append((off / tol if tol > 0 else math.inf if off > 0 else 0.0, half, h, v, e))
        _, segments, whole_have, whole_value, whole_error = max(scored, key=lambda s: s[0])
    t, k, _ = segments[0]
    masked = _masked(direction, segments)
    p = prober.judge(masked)
    failed = p.failed
    # the element's weight in the direction (1 where it is 0: an element the direction
    # does not move carries no discrepancy, and nothing is divided by 0)
    w = float(direction[t].flat[k]) or 1.0
    shape = direction[t].shape
    index = tuple(int(i) for i in np.unravel_index(k, shape)) if shape else ()
    name = prober.trial.names[t]
    got, expected, tol, radius = p.have / w, p.center / w, p.tol / abs(w), p.radius / abs(w)
    off = abs(got - expected)
    relative = off / max(abs(expected), tol) if max(abs(expected), tol) > 0 else (math.inf if off else 0.0)
    report = TensorReport(name=name, verdict=Verdict.FAIL if failed else Verdict.PASS,
                          max_abs_error=off, max_rel_error=relative,
                          n_elements=int(np.prod(shape)), n_failed=int(failed),
                          n_nondifferentiable=int(radius > 0),
                          worst=[Coordinate(index, got, expected, tol,
                                            (expected - radius, expected + radius) if radius else None)])
    where = f"[{', '.join(map(str, index))}]"
    if failed:
        return report, f"bisection localises it to {name} {where}: got {got:.9g}, expected {expected:.9g}"
    return report, (f"bisection ends at {name} {where}, which alone is within tolerance: the error is spread over "
                    "several elements (or a tie split between the halves)")


def _masked(direction, segments):
    """``direction`` on ``segments`` (flat index ranges per input) only, zero elsewhere."""
    masked = [None if w is None else np.zeros(w.shape) for w in direction]
    for t, start, stop in segments:
        masked[t].reshape(-1)[start:stop] = direction[t].reshape(-1)[start:stop]
    return masked


def _segment_rounding(prober, direction, segments) -> float:
    """``prober.rounding`` of ``direction`` masked to ``segments``, from the segments alone."""
    total = math.fsum(prober.floors[t] ** 2 * inner(direction[t].reshape(-1)[a:b], direction[t].reshape(-1)[a:b])
                      for t, a, b in segments)
    f = factor(prober.dtype, "probe")
    floor = f * float(np.finfo(prober.dtype).smallest_normal) * math.fsum(
        float(np.abs(direction[t].reshape(-1)[a:b]).sum()) for t, a, b in segments)
    return f * eps(prober.dtype) * (math.sqrt(total) + (prober.sensitivity or 0.0)) + floor


PROBE_CHECKS = (check_vjp_probes,)
