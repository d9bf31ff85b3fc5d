"""VJP probes for a mapping of any size: ``<VJP(c), w>`` against the oracle's
directional derivative ``d/dt <c, f(x + t w)>``, never a Jacobian, and bisection of
a failing probe down to one input and index.

Directions: the all-ones direction (where every tie moves together, so a gradient
routed to every tied element, which passes each element's bracket, is caught: the
valid total of a tie is the one cotangent), then ``probes`` seeded Rademacher
directions; each is scaled per element by its input's spread (``w = s * u``).

Detection bound. Write ``E = g - g*`` for the cotangent c. For Rademacher signs u and
fixed positive weights s, ``<E, s u> = s_k u_k E_k + R`` with R independent of u_k, so
for any k at least one sign of u_k gives ``|<E, s u>| >= s_k |E_k|``: one probe
misses an error whose largest weighted element exceeds the probe's tolerance (and
bracket) with probability at most 1/2, and m probes with at most 2^-m. The cotangent
is Gaussian, so a wrong backward's error ``E = (J_impl - J)^T c`` has Gaussian
elements, smaller than delta times their typical size with probability about 0.8 delta.

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

import numpy as np

from harness.checks.mapping_trial import MappingTrial, float_grads, judged_dtype
from harness.checks.mapping_values import ELEMENTWISE_LIMIT, vjp_unusable
from harness.checks.probes import split_segments
from harness.core.directional import inner, random_signs
from harness.core.mapping_oracle import nearby, probe, probe_bracket
from harness.core.results import CheckResult, Coordinate, TensorReport, Verdict
from harness.core.tolerances import ORACLE_ERROR_FACTOR, eps, factor, sensitivity_step


class _Prober:
    """Everything one probe needs: the gradients, the oracle, the tolerance's parts."""

    def __init__(self, trial: MappingTrial, grads, dtype):
        self.trial, self.diff, self.dtype = trial, trial.differentiator, dtype
        self.grads = grads
        self.floors = [0.0 if g is None else float(np.max(np.abs(g[np.isfinite(g)]), initial=0.0)) for g in grads]
        self.sensitivity = None  # measured when a probe would fail without it
        # Richardson levels: 3 resolve a probe to about 1e-7 of its size, far below float32
        # rounding; float64 takes 4 (about 1e-11)
        self.levels = 3 if np.finfo(dtype).eps > 1e-10 else 4
        self.exact = False  # use the complex step (Richardson cannot resolve this mapping's probes)

    def have(self, direction) -> float:
        return math.fsum(inner(g, w) for g, w in zip(self.grads, direction) if g is not None)

    def spread(self, direction) -> float:
        """``sqrt(sum_t max|g_t|^2 |w_t|^2)``: the probe's natural size (see the module)."""
        return math.sqrt(math.fsum(f * f * inner(w, w) for f, w in zip(self.floors, direction) if w is not None))

    def rounding(self, direction) -> float:
        return factor(self.dtype, "probe") * eps(self.dtype) * (self.spread(direction) + (self.sensitivity or 0.0))

    def want(self, direction):
        """``(value, error)`` of the oracle's right-hand derivative; the complex step
        where Richardson's error would dominate the tolerance and the forward allows it."""
        c = self.trial.cotangents
        if not self.exact:
            value, error = probe(self.diff, c, direction, levels=self.levels)
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
        return self.diff.complex_ok

    def measure_sensitivity(self):
        """How far the oracle's probe value moves when the inputs move by their rounding,
        along one fixed random direction (the probes' directions are identically
        distributed), per unit of relative perturbation."""
        trial = self.trial
        direction = list(directions(trial, self.diff, 1))[1]
        here, _ = self.want(direction)
        there, _ = probe(nearby(self.diff, trial.dtype, trial.seed), trial.cotangents, direction, exact=self.exact)
        moved = abs(there - here) / sensitivity_step(trial.dtype)
        self.sensitivity = moved if np.isfinite(moved) else 0.0

    def judge(self, direction):
        """``(excess over tolerance, have, center, radius, tolerance)`` of one probe:
        against the right-hand derivative first, against both sides' bracket if that
        one is missed."""
        have = self.have(direction)
        value, error = self.want(direction)
        rounding = self.rounding(direction)
        if abs(have - value) > rounding + ORACLE_ERROR_FACTOR * error and self.sensitivity is None:
            self.measure_sensitivity()
            rounding = self.rounding(direction)
        tol = rounding + ORACLE_ERROR_FACTOR * error
        if abs(have - value) <= tol:
            return 0.0, have, value, 0.0, tol
        center, radius, error = probe_bracket(self.diff, self.trial.cotangents, direction)
        tol = rounding + ORACLE_ERROR_FACTOR * error
        if not np.isfinite(center):
            return 0.0, have, value, 0.0, np.inf  # the forward is not finite nearby: nothing to say
        return max(abs(have - center) - radius - tol, 0.0), have, center, radius, tol


def directions(trial: MappingTrial, diff, count: int | None = None):
    """The all-ones direction, then ``count`` (default: the trial's) seeded random sign
    directions, each scaled by the inputs' spreads; one at a time."""
    rng = np.random.default_rng(trial.seed + 17)
    yield [None if s is None else s.copy() for s in diff.scales]
    for _ in range(trial.probes if count is None else count):
        yield [None if s is None else np.where(random_signs(rng, s.shape), -s, s) for s in diff.scales]


def check_vjp_probes(trial: MappingTrial) -> CheckResult:
    """Directional derivatives of the forward along the all-ones direction and seeded
    random sign directions agree with the VJP's projections (any input size); a
    failing probe is bisected to one input and index."""
    name = "vjp_probes"
    skip = vjp_unusable(trial)
    if skip:
        return trial.result(name, Verdict.SKIP, skip)
    grads = float_grads(trial, trial.first.grads)
    prober = _Prober(trial, grads, judged_dtype(trial, trial.first.grads))
    worst, count = 0.0, 0
    for k, direction in enumerate(directions(trial, prober.diff)):
        count += 1
        excess, have, center, radius, tol = prober.judge(direction)
        worst = max(worst, (abs(have - center) - radius) / tol if tol else 0.0)
        if excess > 0:
            label = "the all-ones direction" if k == 0 else f"random direction {k} (seed {trial.seed + 17})"
            report, where = _bisect(prober, direction)
            bracket = f" (bracket +-{radius:.3g})" if radius else ""
            joint = k == 0 and report is not None and report.verdict is Verdict.PASS
            hint = ("no single element is wrong, but their sum disagrees with how the output moves when every input "
                    "moves together: at a tie, the gradient routed to every tied element instead of one (or split)?"
                    if joint else "")
            return trial.result(
                name, Verdict.FAIL,
                f"along {label}: <VJP(c), w> = {have:.9g}, but the forward's derivative is {center:.9g}{bracket} "
                f"(off by {abs(have - center):.3g}, tolerance {tol:.3g}); {where}",
                tensors=[report] if report else [], hint=hint)
    method = "complex step" if prober.exact else "Richardson"
    return trial.result(name, Verdict.PASS, f"{count} probes ({method}), worst at {worst:.2g} of tolerance")


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
            scored.append((abs(h - v) / tol if tol else 0.0, half, h, v, e))
        _, segments, whole_have, whole_value, whole_error = max(scored, key=lambda s: s[0])
    t, k, _ = segments[0]
    masked = _masked(direction, segments)
    excess, have, center, radius, tol = prober.judge(masked)
    w = float(direction[t].flat[k])
    shape = direction[t].shape
    index = tuple(int(i) for i in np.unravel_index(k, shape)) if shape else ()
    name = prober.trial.names[t]
    got, expected = have / w, center / w
    report = TensorReport(name=name, verdict=Verdict.FAIL if excess > 0 else Verdict.PASS,
                          max_abs_error=abs(got - expected), max_rel_error=abs(got - expected) / max(abs(expected), tol / abs(w)),
                          n_elements=int(np.prod(shape)), n_failed=int(excess > 0),
                          n_nondifferentiable=int(radius > 0),
                          worst=[Coordinate(index, got, expected, tol / abs(w),
                                            (expected - radius / abs(w), expected + radius / abs(w)) if radius else None)])
    where = f"[{', '.join(map(str, index))}]"
    if excess > 0:
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
    return factor(prober.dtype, "probe") * eps(prober.dtype) * (math.sqrt(total) + (prober.sensitivity or 0.0))


PROBE_CHECKS = (check_vjp_probes,)
