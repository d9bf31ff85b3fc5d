"""Second derivatives of any forward along a direction, in float64: what
``harness.core.tolerances.reuse_allowance`` needs to bound the error of a backward that
reuses the forward's rounded outputs."""

from __future__ import annotations

import numpy as np

from harness.core.directional import FIRST_STEP, Differentiator
from harness.core.vectors import largest

# Steps of this and half of it (times the direction). Differences of the forward need a
# step well above rounding (their noise grows as 1/step^2); differences of complex-step
# derivatives, exact to rounding, can be taken so close that an exponential (a softmax
# over logits of 1e4) is still quadratic there.
CURVATURE_STEP = FIRST_STEP / 4
CURVATURE_STEP_COMPLEX = 2.0**-20
_EPS = float(np.finfo(np.float64).eps)


def curvature(diff: Differentiator, direction) -> tuple[list, list]:
    """Per float output element, the first and second derivatives along ``w``:
    ``(D, D2)``. Where two steps disagree on D2 (a kink or tie within them: brackets
    judge those) it is zero; where it is below the rounding of the differences, it is
    that rounding's bound (4 times the noise), the largest curvature the differences
    cannot rule out; NaN where the forward is not finite nearby. Second differences of the complex step's derivatives where the
    forward allows it (4 complex evaluations and 1), else of the forward itself (4)."""
    s = CURVATURE_STEP_COMPLEX if diff.complex_ok else CURVATURE_STEP
    if diff.complex_ok:
        first = diff.complex_right(direction)
        near = [(diff.complex_right(direction, t), diff.complex_right(direction, -t), t) for t in (s, s / 2)]
        second = [[(p[o] - m[o]) / (2 * t) for o in range(len(diff.outputs))] for p, m, t in near]
        # each derivative is exact to 16 eps of itself (rounding only), element by element
        noise = [16 * _EPS * np.maximum(np.abs(f), np.maximum(np.abs(near[1][0][o]), np.abs(near[1][1][o]))) / (s / 2)
                 for o, f in enumerate(first)]
    else:
        near = [(diff.at(direction, t), diff.at(direction, -t), t) for t in (s, s / 2)]
        first = [(p - m) / s for p, m in zip(*near[1][:2])]
        second = [[(p[o] - 2 * f0 + m[o]) / t**2 for o, f0 in enumerate(diff.outputs)] for p, m, t in near]
        # rounding of the output's largest value, as in sides_many (intermediates, not results)
        noise = [64 * _EPS * max(largest(f0), largest(near[1][0][o]), largest(near[1][1][o])) / (s / 2) ** 2
                 for o, f0 in enumerate(diff.outputs)]
    curvatures = []
    for o in range(len(diff.outputs)):
        a, b = second[0][o], second[1][o]
        with np.errstate(invalid="ignore"):
            bound = 4 * noise[o]
            above = np.maximum(np.abs(a), np.abs(b)) > bound
            agree = np.abs(a - b) <= 0.25 * np.maximum(np.abs(a), np.abs(b)) + 2 * noise[o]
            # Richardson on the pair (error O(t^2)) where the two agree
            d2 = np.where(above, np.where(agree, (4 * b - a) / 3, 0.0), bound)
            # an element the direction does not move at all (both differences exactly 0)
            d2 = np.where((a == 0) & (b == 0), 0.0, d2)
        curvatures.append(d2)  # NaN where the forward is not finite nearby: reuse_allowance cannot bound it
    return first, curvatures
