"""The float64 oracle for any mapping, built only from its forward (or reference).

- ``expected_vjp``: for a cotangent c, every element of ``J^T c``, one input element
  at a time (the directional derivative along e_k, both one-sided ones and the central
  one: ``harness.core.directional``). Per output element, one-sided derivatives that
  disagree mark a kink and give a bracket, so the element's valid values are
  ``sum_j c_j [lo_jk, hi_jk]``: relu'(0) in [0, 1], every split of a max-pool tie, and
  every output that shares an element (overlapping windows) counted on its own.
  With each element come its accumulation scale, its rounding sensitivity and the
  oracle's own uncertainty (``harness.core.tolerances`` turns them into tolerances).
  Cost: 8 forward evaluations per input element (plus one complex one), so it is for
  small inputs; ``probe`` serves any size.
- ``probe`` / ``probe_bracket``: ``d/dt <c, f(x + t w)>`` along one direction, its
  right-hand value (Richardson, or the complex step) or the bracket of both sides.
- ``expected_forward`` and ``expected_jvp``: the reference forward and ``J u`` per
  output element, each with its rounding sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.core.curvature import curvature
from harness.core.directional import FIRST_STEP, SMALL_STEP, Differentiator
from harness.core.judging import judge
from harness.core.tolerances import reuse_allowance, sensitivity_step
from harness.core.vectors import inner


@dataclass
class Expected:
    """Per tensor (``None`` where there is nothing to compare): the expected values
    (``center``), the half-width of the valid bracket where not differentiable
    (``radius``), the accumulation ``scale``, the rounding ``sensitivity`` (in scale
    units), the oracle's ``error``, what it could not resolve (``unresolved``) and the
    ``allowance`` for outputs a backward reuses (absolute; ``reuse_allowance``)."""

    center: list
    radius: list
    scale: list
    sensitivity: list
    error: list
    unresolved: list
    method: str = ""
    allowance: list | None = None

    def __post_init__(self):
        if self.allowance is None:
            self.allowance = [None if c is None else np.zeros(np.shape(c)) for c in self.center]

    @property
    def n_nondifferentiable(self) -> int:
        return sum(int((r > 0).sum()) for r in self.radius if r is not None)

    @property
    def n_unresolved(self) -> int:
        return sum(int(u.sum()) for u in self.unresolved if u is not None)


def perturbed(inputs, dtype, seed: int) -> list:
    """The float inputs moved by their own rounding, ``x (1 + delta r)`` with random
    signs r and ``delta = sensitivity_step(dtype)`` (integer inputs unchanged): where a
    correct dtype-d implementation may as well have been."""
    rng = np.random.default_rng(seed + 4099)
    step = sensitivity_step(dtype)
    out = []
    for x in inputs:
        x = np.asarray(x)
        if x.dtype.kind == "f":
            x = np.asarray(x, np.float64)
            x = x * (1 + step * rng.choice(np.array([-1.0, 1.0]), x.shape))
        out.append(x)
    return out


# Rounding sensitivity is the largest change over this many draws of random signs: one
# draw can all but cancel for a given element (layer_norm at an offset of 1e3: 0.6 in one
# draw, 90 and 520 in the next two), three rarely all do.
DRAWS = 3


def nearby(diff: Differentiator, dtype, seed: int) -> list[Differentiator]:
    """The same forward at ``DRAWS`` draws of ``perturbed`` inputs, keeping what was
    found about it."""
    others = []
    for draw in range(DRAWS):
        other = Differentiator(diff.forward, perturbed(diff.inputs, dtype, seed + 7 * draw), diff.params)
        other.scales = diff.scales
        other._complex = diff._complex
        others.append(other)
    return others


def largest_change(values, here, step):
    """``max |value - here| / step`` over the draws (elementwise); infinite where a value
    is not finite: a sensitivity that cannot be measured cannot be ruled out either."""
    with np.errstate(invalid="ignore"):
        change = np.max([np.abs(np.asarray(v, np.float64) - here) for v in values], axis=0) / step
    return np.where(np.isnan(change), np.inf, change)


def _float_cotangents(diff: Differentiator, cotangents) -> list:
    """The cotangents of the float outputs in float64, converted once per set of
    cotangents (by identity): every probe of a check shares them, and a float32
    cotangent converted anew at each probe also made the differentiator recompute its
    contraction with the outputs (kept by the identity of the converted arrays)."""
    kept = getattr(diff, "_float64_cotangents", None)
    if kept is not None and len(kept[0]) == len(cotangents) and all(a is b for a, b in zip(kept[0], cotangents)):
        return kept[1]
    converted = [np.asarray(cotangents[i], np.float64) for i in diff.float_outputs]
    diff._float64_cotangents = (tuple(cotangents), converted)  # the originals held: their ids stay theirs
    return converted


CHUNK = 32  # input elements differentiated together (their outputs stacked for one tableau)


def _rows(a) -> np.ndarray:
    """Sum over every axis but the first."""
    return np.asarray(a, np.float64).reshape(a.shape[0], -1).sum(axis=1)


def _one_hot(diff: Differentiator, t: int, k: int):
    direction = [None if s is None else np.zeros(s.shape) for s in diff.scales]
    direction[t].flat[k] = diff.scales[t].flat[k]
    return direction


def expected_vjp(diff: Differentiator, cotangents) -> Expected:
    """Every element of ``J^T c`` with its bracket, scale and error (sensitivity zero:
    ``vjp_sensitivity`` measures it where it is needed).

    An element whose steps straddle a kink it is not on (abs at x = -1e-3, with steps
    of 1e-2 of the data's spread) looks non-differentiable, or comes with a large
    error: such elements are taken again with steps ``REFINE`` times smaller, and the
    narrower bracket (or the smaller error) is kept; one truly on a kink keeps its
    bracket at any step."""
    c = _float_cotangents(diff, cotangents)
    fields = {name: [] for name in ("center", "radius", "scale", "sensitivity", "error", "unresolved")}
    for t, s in enumerate(diff.scales):
        if s is None:
            for values in fields.values():
                values.append(None)
            continue
        columns = np.zeros((4, s.size))  # center, radius, error, scale
        unresolved = ~(s.ravel() > 0)
        usable = np.flatnonzero(~unresolved)
        for chunk in np.array_split(usable, max(1, -(-usable.size // CHUNK))):
            if chunk.size:
                columns[:, chunk], unresolved[chunk] = _columns(diff, c, t, chunk, FIRST_STEP)
        center, radius, error, scale = columns
        poor = usable[(radius[usable] > 0) | ~(error[usable] <= RESOLVED * (np.abs(center[usable]) + scale[usable]))]
        for chunk in np.array_split(poor, max(1, -(-poor.size // CHUNK))):
            if chunk.size:
                again, lost = _columns(diff, c, t, chunk, FIRST_STEP / REFINE)
                better = ~lost & ((again[1] < radius[chunk]) | ((again[1] == radius[chunk]) & (again[2] < error[chunk])))
                columns[:, chunk[better]] = again[:, better]
        for name, value in (("center", center), ("radius", radius), ("scale", scale), ("error", error),
                            ("sensitivity", np.zeros(s.size)), ("unresolved", unresolved)):
            fields[name].append(value.reshape(s.shape))
    return Expected(**fields, method=diff.method)


REFINE = 2.0**10  # how much smaller the steps of a second look are
RESOLVED = 1e-9  # an element's error estimate, relative to its size, beyond which it is taken again


def _columns(diff: Differentiator, c, t: int, chunk, first: float):
    """``([center, radius, error, scale], unresolved)`` of the elements ``chunk`` of input
    ``t``: per element (a row), every output weighted by the cotangent."""
    j = judge(diff.sides_many([_one_hot(diff, t, k) for k in chunk], first=first))
    unit = diff.scales[t].ravel()[chunk]
    columns = np.array([
        sum(_rows(co * v) for co, v in zip(c, j.center)),
        sum(_rows(np.abs(co) * v) for co, v in zip(c, j.radius)),
        sum(_rows(np.abs(co) * v) for co, v in zip(c, j.error)),
        sum(_rows(np.abs(co) * (np.abs(v) + r)) for co, v, r in zip(c, j.center, j.radius)),
    ]) / unit
    unresolved = np.any([_rows(u & (co != 0)) > 0 for co, u in zip(c, j.unresolved)], axis=0)
    return columns, unresolved


def vjp_sensitivity(diff: Differentiator, cotangents, expected: Expected, elements, dtype, seed: int,
                    judged=None) -> None:
    """Fill in ``expected.sensitivity`` and ``expected.allowance`` for ``elements`` (per
    input, flat indices or ``None``): how far each moves, per unit of relative
    perturbation, when the inputs move by their rounding (``dtype``), and how far when
    a backward reuses outputs rounded to ``judged`` (default ``dtype``). Measured only
    where an element would fail without them, since they can only widen a tolerance;
    never for a non-differentiable element, whose bracket already says what is valid."""
    c = _float_cotangents(diff, cotangents)
    others = nearby(diff, dtype, seed)
    step = sensitivity_step(dtype)
    for t, indices in enumerate(elements):
        if indices is None:
            continue
        for k in indices:
            unit = diff.scales[t].flat[k]
            if expected.radius[t].flat[k] > 0 or expected.unresolved[t].flat[k] or not unit > 0:
                continue
            direction = _one_hot(diff, t, k)
            moved = [_value(other, c, direction) / unit for other in others]
            expected.sensitivity[t].flat[k] = float(largest_change(moved, expected.center[t].flat[k], step))
            expected.allowance[t].flat[k] = reuse_along(diff, cotangents, direction, judged or dtype) / unit


def reuse_allowances(diff: Differentiator, direction, dtype) -> list:
    """Per float output element, ``reuse_allowance`` along ``direction`` taken one input at
    a time and summed: how far a derivative along it may be off when a backward reuses
    the outputs rounded to ``dtype``. One input at a time because a backward computes
    each input's part on its own (a normalisation's x part cancels to almost nothing
    while its gamma and beta parts do not: together they would hide the x part's)."""
    total = [np.zeros(y.shape) for y in diff.outputs]
    for t, w in enumerate(direction):
        if w is None or not np.any(w):
            continue
        first, second = curvature(diff, [w if i == t else None for i in range(len(direction))])
        for o, (d, d2, y) in enumerate(zip(first, second, diff.outputs)):
            total[o] = total[o] + reuse_allowance(d, d2, y, dtype)
    return total


def reuse_along(diff: Differentiator, cotangents, direction, dtype) -> float:
    """``sum_j |c_j| reuse_allowances_j`` along ``direction``: how far ``<c, J w>`` may be
    off when a backward reuses the outputs rounded to ``dtype``."""
    c = _float_cotangents(diff, cotangents)
    return float(sum(inner(np.abs(co), a) for co, a in zip(c, reuse_allowances(diff, direction, dtype))))


def _value(diff: Differentiator, c, direction) -> float:
    """``d/dt <c, f(x + t w)>``, the value alone (the complex step, or central Richardson)."""
    if diff.complex_ok:
        return sum(float(np.sum(co * v)) for co, v in zip(c, diff.complex_right(direction)))
    j = judge(diff.sides(direction, levels=3, exact=False))
    return sum(float(np.sum(co * v)) for co, v in zip(c, j.center))


def expected_forward(reference, inputs, params, dtype, seed: int) -> tuple[list, list]:
    """The reference's float64 outputs at the case's inputs, and each element's
    rounding sensitivity (in scale units): how far it moves with ``perturbed`` inputs."""
    at = Differentiator(reference, inputs, params)
    moved = [Differentiator(reference, perturbed(at.inputs, dtype, seed + 7 * draw), params) for draw in range(DRAWS)]
    step = sensitivity_step(dtype)
    sensitivity = [largest_change([m.outputs[o] for m in moved], a, step) for o, a in enumerate(at.outputs)]
    return at.outputs, sensitivity


def tangent_unit(diff: Differentiator) -> float:
    """A step unit for tangents given in input units: the smallest input spread, so a
    step along a tangent is small against every input it moves (once per differentiator:
    a median of a million scales is a partition)."""
    if getattr(diff, "_tangent_unit", None) is None:
        spreads = [_median(s) for s in diff.scales if s is not None and s.size]
        positive = [v for v in spreads if v > 0]
        diff._tangent_unit = min(positive) if positive else 1.0
    return diff._tangent_unit


def _median(a) -> float:
    """``np.median(a)``; for a constant array (the scales of an unbounded input) from its
    extremes, without the partition of a copy."""
    low, high = float(np.min(a)), float(np.max(a))
    return low if low == high else float(np.median(a))


def tangent_direction(diff: Differentiator, tangents):
    """``(unit, unit * tangents)``: the very direction shared under ``tangents``, if it is."""
    unit = tangent_unit(diff)
    shared = diff.shared(tangents)
    return unit, shared if shared is not None else [None if u is None else unit * np.asarray(u, np.float64)
                                                    for u in tangents]


def expected_jvp(diff: Differentiator, tangents, exact: bool = False) -> Expected:
    """``J u`` per float output element, first by the right-hand derivative alone
    (Richardson, 4 evaluations; or with ``exact`` the complex step): brackets and
    sensitivities come from ``refine_jvp``, for the elements that need them."""
    unit, direction = tangent_direction(diff, tangents)
    method = diff.method if exact else "Richardson-extrapolated differences"
    exact = exact and diff.complex_ok
    if exact:
        values, errors = diff.complex_right(direction), [np.zeros(v.shape) for v in diff.outputs]
        if sum(x.size for x, d in zip(diff.inputs, diff.differentiable) if d) <= CROSS_CHECK_ELEMENTS:
            values, errors = _cross_checked(diff, direction, values, errors)
    else:
        d = diff.right(direction)
        values, errors = d.right, [e + n for e, n in zip(d.right_error, d.noise)]
    center, scale, error, unresolved = [], [], [], []
    for v, e in zip(values, errors):
        # np.asarray of the quotient: dividing a 0-d array gives a NumPy scalar, whose
        # .flat hands refine_jvp a copy (a bracket for max over everything would be lost);
        # every array here is a fresh one (refine_jvp and the JVP check write into them)
        with np.errstate(invalid="ignore"):
            # (an overflow only takes the long way; the complex step's errors are fresh zeros)
            everywhere = bool(np.isfinite(np.sum(v)) and (exact or np.isfinite(np.sum(e))))
        if everywhere:  # every value and error finite: nothing to mask, in a third of the passes
            c = np.asarray(v / unit)
            center.append(c)
            scale.append(np.abs(c))
            error.append(e if exact and np.ndim(e) else np.asarray(e / unit))
            unresolved.append(np.zeros(np.shape(v), bool))
            continue
        u = np.asarray(~np.isfinite(v) | ~np.isfinite(e))
        center.append(np.asarray(np.where(u, 0.0, v) / unit))
        scale.append(np.asarray(np.where(u, 0.0, np.abs(v)) / unit))
        error.append(np.asarray(np.where(u, 0.0, e) / unit))
        unresolved.append(u)
    return Expected(
        center=center,
        radius=[np.zeros(v.shape) for v in values],
        scale=scale,
        sensitivity=[np.zeros(v.shape) for v in values],
        error=error,
        unresolved=unresolved,
        method=method,
    )


CROSS_CHECK_ELEMENTS = 4096  # up to this many input elements: see _cross_checked


def _cross_checked(diff: Differentiator, direction, values, errors):
    """The complex step's values, except where Richardson's right-hand derivative (4
    evaluations) disagrees with them beyond its own error estimate (and 1e-6 relative):
    detection looks along a few sparse directions, so a forward not analytic on a few
    elements passes it (np.abs(x) ** 2 in one branch of an np.where: an imaginary part of
    0); there Richardson's value holds, with its error. Next to a kink Richardson's
    estimate is large, and the complex step (the right-hand derivative, exact) stays."""
    from harness.core.complex_step import KINK_FACTOR

    d = diff.right(direction)
    checked_values, checked_errors = [], []
    for v, e, r, er, n in zip(values, errors, d.right, d.right_error, d.noise):
        with np.errstate(invalid="ignore"):
            off = np.isfinite(r) & (np.abs(v - r) > KINK_FACTOR * (er + n) + 1e-6 * np.abs(r))
        checked_values.append(np.where(off, r, v) if off.any() else v)
        checked_errors.append(np.where(off, er + n, e) if off.any() else e)
    return checked_values, checked_errors


def retaken_jvp_at(diff: Differentiator, tangents, picks, exact: bool = True) -> list:
    """``expected_jvp``'s center, scale, error and unresolved at the flat indices ``picks``
    (per output; ``None``: none), as ``{field: values}`` per output, taken again: by the
    complex step (``exact``), else by Richardson from steps below the kinks' spacing
    (``SMALL_STEP``: 2 evaluations, none where a probe along the shared direction took them)."""
    unit, direction = tangent_direction(diff, tangents)
    if exact:
        values = [None if p is None else np.ravel(v)[p] for v, p in zip(diff.complex_right(direction), picks)]
        errors = [None if p is None else np.zeros(p.size) for p in picks]
    else:
        d = diff.right(direction, levels=2, first=SMALL_STEP, pick=[np.zeros(0, int) if p is None else p for p in picks])
        values, errors = d.right, [e + n for e, n in zip(d.right_error, d.noise)]
    out = []
    for v, e, p in zip(values, errors, picks):
        u = None if p is None else ~np.isfinite(v) | ~np.isfinite(e)
        out.append(None if p is None else {"center": np.where(u, 0.0, v) / unit, "scale": np.where(u, 0.0, np.abs(v)) / unit,
                                           "error": np.where(u, 0.0, e) / unit, "unresolved": u})
    return out


def refine_jvp(diff: Differentiator, tangents, expected: Expected, picks, dtype, seed: int, judged=None) -> None:
    """For the output elements ``picks`` (per output, flat indices or ``None``): both
    one-sided derivatives and the central one (a bracket where they part), the
    rounding sensitivity and the allowance for reused outputs (rounded to ``judged``,
    default ``dtype``), in place."""
    unit, direction = tangent_direction(diff, tangents)
    wanted = [np.zeros(0, int) if p is None else p for p in picks]
    j = judge(diff.sides_many([direction], pick=wanted))
    # a second look with smaller steps where the first straddles a kink the element is
    # not on (a bracket, or a large error): the narrower bracket, or smaller error, stays
    again = judge(diff.sides_many([direction], pick=wanted, first=FIRST_STEP / REFINE))
    for o in range(len(wanted)):
        with np.errstate(invalid="ignore"):
            better = (~again.unresolved[o] & ((again.radius[o] < j.radius[o])
                                             | ((again.radius[o] == j.radius[o]) & (again.error[o] < j.error[o]))))
        for field in ("center", "radius", "error", "unresolved"):
            getattr(j, field)[o] = np.where(better, getattr(again, field)[o], getattr(j, field)[o])
    others = nearby(diff, dtype, seed)
    if diff.complex_ok:  # one evaluation per draw
        moved = [[np.ravel(v)[p][None] for v, p in zip(other.complex_right(direction), wanted)] for other in others]
    else:
        moved = [judge(other.sides_many([direction], levels=3, pick=wanted)).center for other in others]
    step = sensitivity_step(dtype)
    allowances = reuse_allowances(diff, direction, judged or dtype)
    for o, p in enumerate(picks):
        if p is not None:
            allowance = allowances[o] / unit
            expected.allowance[o].flat[p] = np.where(j.radius[o][0] > 0, 0.0, np.ravel(allowance)[p])
    for o, p in enumerate(picks):
        if p is None:
            continue
        center, radius, error = j.center[o][0] / unit, j.radius[o][0] / unit, j.error[o][0] / unit
        for field, values in (("center", center), ("radius", radius), ("error", error),
                              ("scale", np.abs(center) + radius), ("unresolved", j.unresolved[o][0])):
            getattr(expected, field)[o].flat[p] = values
        sensitivity = largest_change([m[o][0] / unit for m in moved], center, step)
        expected.sensitivity[o].flat[p] = np.where(radius > 0, 0.0, sensitivity)
