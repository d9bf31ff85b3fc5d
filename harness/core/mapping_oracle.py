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

from harness.core.directional import SMALL_STEP, Differentiator, inner, judge
from harness.core.tolerances import sensitivity_step


@dataclass
class Expected:
    """Per tensor (``None`` where there is nothing to compare): the expected values
    (``center``), the half-width of the valid bracket where not differentiable
    (``radius``), the accumulation ``scale``, the rounding ``sensitivity`` (in scale
    units), the oracle's ``error`` and what it could not resolve (``unresolved``)."""

    center: list
    radius: list
    scale: list
    sensitivity: list
    error: list
    unresolved: list
    method: str = ""

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


def nearby(diff: Differentiator, dtype, seed: int) -> Differentiator:
    """The same forward at ``perturbed`` inputs, keeping what was found about it."""
    other = Differentiator(diff.forward, perturbed(diff.inputs, dtype, seed), diff.params)
    other.scales = diff.scales
    other._complex = diff._complex
    return other


def _float_cotangents(diff: Differentiator, cotangents) -> list:
    return [np.asarray(cotangents[i], np.float64) for i in diff.float_outputs]


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
    ``vjp_sensitivity`` measures it where it is needed)."""
    c = _float_cotangents(diff, cotangents)
    fields = {name: [] for name in ("center", "radius", "scale", "sensitivity", "error", "unresolved")}
    for t, s in enumerate(diff.scales):
        if s is None:
            for values in fields.values():
                values.append(None)
            continue
        center, radius, scale, error = (np.zeros(s.size) for _ in range(4))
        unresolved = ~(s.ravel() > 0)
        usable = np.flatnonzero(~unresolved)
        for chunk in np.array_split(usable, max(1, -(-usable.size // CHUNK))):
            if not chunk.size:
                continue
            j = judge(diff.sides_many([_one_hot(diff, t, k) for k in chunk]))
            unit = s.ravel()[chunk]
            # per row (element): sum over every output element, weighted by the cotangent
            center[chunk] = sum(_rows(co * v) for co, v in zip(c, j.center)) / unit
            radius[chunk] = sum(_rows(np.abs(co) * v) for co, v in zip(c, j.radius)) / unit
            error[chunk] = sum(_rows(np.abs(co) * v) for co, v in zip(c, j.error)) / unit
            scale[chunk] = sum(_rows(np.abs(co) * (np.abs(v) + r)) for co, v, r in zip(c, j.center, j.radius)) / unit
            unresolved[chunk] = np.any([_rows(u & (co != 0)) > 0 for co, u in zip(c, j.unresolved)], axis=0)
        center, radius, scale, error = (a.reshape(s.shape) for a in (center, radius, scale, error))
        unresolved = unresolved.reshape(s.shape)
        for name, value in (("center", center), ("radius", radius), ("scale", scale), ("error", error),
                            ("sensitivity", np.zeros(s.shape)), ("unresolved", unresolved)):
            fields[name].append(value)
    return Expected(**fields, method=diff.method)


def vjp_sensitivity(diff: Differentiator, cotangents, expected: Expected, elements, dtype, seed: int) -> None:
    """Fill in ``expected.sensitivity`` for ``elements`` (per input, flat indices or
    ``None``): how far each moves, per unit of relative perturbation, when the inputs
    move by their rounding. Measured only where an element would fail without it,
    since it can only widen a tolerance; never for a non-differentiable element,
    whose bracket already says what is valid."""
    c = _float_cotangents(diff, cotangents)
    other = nearby(diff, dtype, seed)
    step = sensitivity_step(dtype)
    for t, indices in enumerate(elements):
        if indices is None:
            continue
        for k in indices:
            unit = diff.scales[t].flat[k]
            if expected.radius[t].flat[k] > 0 or expected.unresolved[t].flat[k] or not unit > 0:
                continue
            moved = _value(other, c, _one_hot(diff, t, k)) / unit
            expected.sensitivity[t].flat[k] = abs(moved - expected.center[t].flat[k]) / step if np.isfinite(moved) else 0.0


def _value(diff: Differentiator, c, direction) -> float:
    """``d/dt <c, f(x + t w)>``, the value alone (the complex step, or central Richardson)."""
    if diff.complex_ok:
        return sum(float(np.sum(co * v)) for co, v in zip(c, diff.complex_right(direction)))
    j = judge(diff.sides(direction, levels=3, exact=False))
    return sum(float(np.sum(co * v)) for co, v in zip(c, j.center))


def probe(diff: Differentiator, cotangents, direction, exact: bool = False, levels: int = 4) -> tuple[float, float]:
    """The right-hand derivative of ``<c, f>`` along ``direction`` and its error
    estimate: by Richardson (``levels`` forward evaluations; 2 more with steps below
    the kinks' spacing where those cannot resolve it), or with ``exact`` by the complex step (one
    complex evaluation; only where ``diff.complex_ok``)."""
    c = _float_cotangents(diff, cotangents)
    if exact:
        return sum(inner(co, v) for co, v in zip(c, diff.complex_right(direction))), 0.0
    value, error = diff.contracted(direction, c, levels=levels)
    if not error <= 1e-6 * abs(value):
        small = diff.contracted(direction, c, levels=2, first_step=SMALL_STEP)
        if small[1] < error:
            value, error = small
    return value, error


def probe_bracket(diff: Differentiator, cotangents, direction) -> tuple[float, float, float]:
    """``(center, radius, error)`` of the valid values of ``<c, J w>``: per output
    element, the bracket of its one-sided derivatives along ``direction``, summed
    with the cotangent's weights."""
    c = _float_cotangents(diff, cotangents)
    j = judge(diff.sides(direction))
    if any(bool(np.any(u & (co != 0))) for co, u in zip(c, j.unresolved)):
        return np.nan, 0.0, np.inf
    center = sum(float(np.sum(co * v)) for co, v in zip(c, j.center))
    radius = sum(float(np.sum(np.abs(co) * r)) for co, r in zip(c, j.radius))
    error = sum(float(np.sum(np.abs(co) * e)) for co, e in zip(c, j.error))
    return center, radius, error


def expected_forward(reference, inputs, params, dtype, seed: int) -> tuple[list, list]:
    """The reference's float64 outputs at the case's inputs, and each element's
    rounding sensitivity (in scale units): how far it moves with ``perturbed`` inputs."""
    at = Differentiator(reference, inputs, params)
    moved = Differentiator(reference, perturbed(at.inputs, dtype, seed), params)
    step = sensitivity_step(dtype)
    with np.errstate(invalid="ignore"):
        sensitivity = [np.abs(b - a) / step for a, b in zip(at.outputs, moved.outputs)]
    return at.outputs, sensitivity


def tangent_unit(diff: Differentiator) -> float:
    """A step unit for tangents given in input units: the smallest input spread, so a
    step along a tangent is small against every input it moves."""
    spreads = [float(np.median(s)) for s in diff.scales if s is not None and s.size]
    positive = [v for v in spreads if v > 0]
    return min(positive) if positive else 1.0


def _tangent_direction(diff: Differentiator, tangents):
    unit = tangent_unit(diff)
    return unit, [None if u is None else unit * np.asarray(u, np.float64) for u in tangents]


def expected_jvp(diff: Differentiator, tangents, exact: bool = False) -> Expected:
    """``J u`` per float output element, first by the right-hand derivative alone
    (Richardson, 4 evaluations; or with ``exact`` the complex step): brackets and
    sensitivities come from ``refine_jvp``, for the elements that need them."""
    unit, direction = _tangent_direction(diff, tangents)
    if exact and diff.complex_ok:
        values, errors = diff.complex_right(direction), [np.zeros(v.shape) for v in diff.outputs]
    else:
        d = diff.right(direction)
        values, errors = d.right, [e + n for e, n in zip(d.right_error, d.noise)]
    unresolved = [~np.isfinite(v) | ~np.isfinite(e) for v, e in zip(values, errors)]
    return Expected(
        center=[np.where(u, 0.0, v) / unit for v, u in zip(values, unresolved)],
        radius=[np.zeros(v.shape) for v in values],
        scale=[np.where(u, 0.0, np.abs(v)) / unit for v, u in zip(values, unresolved)],
        sensitivity=[np.zeros(v.shape) for v in values],
        error=[np.where(u, 0.0, e) / unit for e, u in zip(errors, unresolved)],
        unresolved=unresolved,
        method=diff.method if exact else "Richardson-extrapolated differences",
    )


def refine_jvp(diff: Differentiator, tangents, expected: Expected, picks, dtype, seed: int) -> None:
    """For the output elements ``picks`` (per output, flat indices or ``None``): both
    one-sided derivatives and the central one (a bracket where they part), and the
    rounding sensitivity, in place."""
    unit, direction = _tangent_direction(diff, tangents)
    wanted = [np.zeros(0, int) if p is None else p for p in picks]
    j = judge(diff.sides_many([direction], pick=wanted))
    other = nearby(diff, dtype, seed)
    moved = judge(other.sides_many([direction], levels=3, pick=wanted)).center
    step = sensitivity_step(dtype)
    for o, p in enumerate(picks):
        if p is None:
            continue
        center, radius, error = j.center[o][0] / unit, j.radius[o][0] / unit, j.error[o][0] / unit
        for field, values in (("center", center), ("radius", radius), ("error", error),
                              ("scale", np.abs(center) + radius), ("unresolved", j.unresolved[o][0])):
            getattr(expected, field)[o].flat[p] = values
        with np.errstate(invalid="ignore"):
            sensitivity = np.abs(moved[o][0] / unit - center) / step
        expected.sensitivity[o].flat[p] = np.where((radius > 0) | ~np.isfinite(sensitivity), 0.0, sensitivity)
