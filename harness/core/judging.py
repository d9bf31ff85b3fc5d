"""Judging directional derivatives element by element: where the one-sided and
central derivatives of an output element agree (within their error estimates), its
derivative; where they part, the bracket of valid values (a kink at the point or
within the steps). ``harness.core.directional`` computes the derivatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.core.complex_step import KINK_FACTOR
from harness.core.directional import Derivative
from harness.core.vectors import COMPLEX_FLOOR


@dataclass
class Judged:
    """Per float output element: the derivative (``center``), the half-width of the
    bracket of valid values where it is not differentiable (``radius``), the
    uncertainty of ``center`` (``error``) and where nothing could be said
    (``unresolved``: the forward was not finite nearby)."""

    center: list
    radius: list
    error: list
    unresolved: list


def judge(d: Derivative) -> Judged:
    """Per output element: where the right-hand, left-hand and central derivatives agree
    within their error estimates (plus rounding), the derivative is the complex step's
    (or the central one, with its error); where any two disagree, any value between
    them is valid: the center and radius of that bracket. That covers a kink at the
    point (the one-sided values differ) and one within the steps (an element a
    millionth away from relu's kink: one side crosses it and its estimate is garbage,
    whatever its error estimate says), where picking one value would be a guess."""
    centers, radii, errors, unresolved = [], [], [], []
    for o in range(len(d.right)):
        r, le, c = d.right[o], d.left[o], d.central[o]
        er, el, ec, noise = d.right_error[o], d.left_error[o], d.central_error[o], d.noise[o]
        with np.errstate(invalid="ignore"):
            unknown = ~(np.isfinite(r) & np.isfinite(le) & np.isfinite(c) & np.isfinite(noise))
            allowance = KINK_FACTOR * (er + el + ec) + noise
            low, high = np.minimum(np.minimum(r, le), c), np.maximum(np.maximum(r, le), c)
            center, error = c, ec + noise
            if d.exact is not None:
                # The complex step passed detection (along a few directions). Where the
                # one-sided values part, the bracket spans them and it. Where they agree
                # (no kink within the steps) and it does not, it is wrong there, not the
                # element a kink: a forward not analytic on a few elements only
                # (np.abs(x) ** 2 in one branch of an np.where) gives an imaginary part of 0,
                # and a bracket [0, f'] passed a VJP of 0. There the central value holds.
                x = np.where(np.isfinite(d.exact[o]), d.exact[o], c)
                sides_part = high - low > allowance + 1e-6 * np.abs(c)
                off = ~sides_part & (np.abs(x - c) > allowance + 1e-6 * np.abs(c))
                x = np.where(off, c, x)
                low, high = np.minimum(low, x), np.maximum(high, x)
                # (exact down to COMPLEX_FLOOR, below which its imaginary part underflows)
                center, error = x, np.where(off, ec + noise, COMPLEX_FLOOR)
            kink = (high - low > allowance + 1e-6 * np.abs(center)) & ~unknown
        centers.append(np.where(kink, (low + high) / 2, np.where(unknown, 0.0, center)))
        radii.append(np.where(kink, (high - low) / 2 + KINK_FACTOR * np.maximum(np.maximum(er, el), ec) + noise, 0.0))
        errors.append(np.where(kink | unknown, 0.0, error))
        unresolved.append(unknown)
    return Judged(centers, radii, errors, unresolved)
