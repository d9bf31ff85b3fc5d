"""The oracle's side of a VJP probe: the directional derivative of ``<c, f>`` along a
direction (Richardson, the steps below the kinks' spacing where the usual ones cannot
resolve it, or the complex step) and the bracket of its valid values where an output
is not differentiable along it. ``harness.checks.mapping_probes`` judges with them."""

from __future__ import annotations

import numpy as np

from harness.core.directional import SMALL_STEP, Differentiator
from harness.core.judging import judge
from harness.core.mapping_oracle import _float_cotangents
from harness.core.tolerances import ORACLE_ERROR_FACTOR


def probe(diff: Differentiator, cotangents, direction, exact: bool = False, levels: int = 4,
          enough: float = 0.0) -> tuple[float, float]:
    """The right-hand derivative of ``<c, f>`` along ``direction`` and its error
    estimate: by Richardson (``levels`` forward evaluations; 2 more with steps below
    the kinks' spacing where those cannot resolve it, unless its error is ``enough``
    already), or with ``exact`` by the complex step (one complex evaluation; only where
    ``diff.complex_ok``)."""
    if exact:
        c = _float_cotangents(diff, cotangents)
        return diff.complex_contracted(direction, c), 0.0
    return probe_steps(diff, cotangents, direction, levels, enough)[:2]


def probe_steps(diff: Differentiator, cotangents, direction, levels: int = 4, enough: float = 0.0,
                small_first: bool = False) -> tuple[float, float, bool]:
    """``probe``'s Richardson value and error, and whether they come from the steps below
    the kinks' spacing. With ``small_first`` those steps are tried first (where an
    earlier probe along an identically distributed direction needed them: relu over a
    million elements, whose usual tableau never resolves a probe) and the usual tableau
    only where they do not resolve this one; either way the value kept is one whose
    error is ``enough`` (or 1e-6 of it), else the one with the smaller error, as
    without: only the order of trying differs."""
    c = _float_cotangents(diff, cotangents)

    def resolved(value, error):
        return error <= 1e-6 * abs(value) or error <= enough

    if small_first:
        small = diff.contracted(direction, c, levels=2, first_step=SMALL_STEP)
        if resolved(*small):
            return small[0], small[1], True
        value, error = diff.contracted(direction, c, levels=levels)
        return (small[0], small[1], True) if small[1] < error else (value, error, False)
    if levels > 3 and diff._kept(direction) is not None:
        # (a shared direction, whose evaluations are kept: the first three serve both tableaux)
        # the last level only where the one before it is within reach of resolving the
        # probe: a tableau whose error is still above 1e-4 of its value at three levels
        # crosses kinks (relu over a million elements: hundreds at every step), which a
        # smaller step of the same tableau does not mend (smooth forwards are at about
        # 1e-8 there); the steps below the kinks' spacing are tried instead
        value, error = diff.contracted(direction, c, levels=levels - 1)
        if resolved(value, error) or error <= 1e-4 * abs(value):
            value, error = diff.contracted(direction, c, levels=levels)
    else:
        value, error = diff.contracted(direction, c, levels=levels)
    if not resolved(value, error):
        small = diff.contracted(direction, c, levels=2, first_step=SMALL_STEP)
        if small[1] < error:
            return small[0], small[1], True
    return value, error, False


def probe_bracket(diff: Differentiator, cotangents, direction) -> tuple[float, float, float]:
    """``(center, radius, error)`` of the valid values of ``<c, J w>``: per output
    element, the bracket of its one-sided derivatives along ``direction``, summed
    with the cotangent's weights.

    Where the usual steps leave any element bracketed, the steps below the kinks'
    spacing (``SMALL_STEP``) are tried too and the narrower bracket is kept (radius plus
    ``ORACLE_ERROR_FACTOR`` times its error). Along a direction over many elements the
    usual steps cross the kinks of every element within ``FIRST_STEP`` of one (relu over
    a million: thousands), each of which then counts as a kink: a bracket of +-4 % of
    the probe, wide enough to pass a gradient 3 % too large or with one sign flipped.
    The small steps cross a kink with probability about 0.2 there; an element they do
    cross is bracketed as before, and one exactly on a kink is bracketed by both. Each
    bracket holds every valid value within its own error estimate, so the narrower is
    as sound as the wider."""
    c = _float_cotangents(diff, cotangents)
    best = _bracket(c, judge(diff.sides(direction)))
    if best[1] > 0 or not np.isfinite(best[0]):
        small = _bracket(c, judge(diff.sides(direction, first=SMALL_STEP)))
        if np.isfinite(small[0]) and (not np.isfinite(best[0]) or _width(small) < _width(best)):
            best = small
    return best


def _bracket(c, j) -> tuple[float, float, float]:
    if any(bool(np.any(u & (co != 0))) for co, u in zip(c, j.unresolved)):
        return np.nan, 0.0, np.inf
    center = sum(float(np.sum(co * v)) for co, v in zip(c, j.center))
    radius = sum(float(np.sum(np.abs(co) * r)) for co, r in zip(c, j.radius))
    error = sum(float(np.sum(np.abs(co) * e)) for co, e in zip(c, j.error))
    return center, radius, error


def _width(bracket) -> float:
    return bracket[1] + ORACLE_ERROR_FACTOR * bracket[2]
