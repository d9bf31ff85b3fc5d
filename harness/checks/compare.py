"""Comparing answers: tensors against expected values within tolerances, and two
answers to identical calls against each other.

``compare_tensors`` is the one routine behind every check that judges values (the
loss, the gradients, dL/dx, the metamorphic properties); each element passes within
``tolerance(dtype, comparison, scale)`` of its expected center, or anywhere inside
its bracket ``center +- radius`` where it is non-differentiable.
"""

from __future__ import annotations

import numpy as np

from harness.checks.trial import flat, tensor_names
from harness.core.protocol import StepResult
from harness.core.results import Coordinate, TensorReport, Verdict
from harness.core.tolerances import tolerance

WORST_SHOWN = 5


def compare_elementwise(got, center, radius, scale, *, dtype, comparison, name, margin=0.0) -> TensorReport:
    """Judge ``got`` element by element against ``center +- radius`` with the dtype's
    tolerance (plus ``margin``: the expected value's own uncertainty, where the oracle
    is not exact); elements with ``radius > 0`` are non-differentiable and pass
    anywhere inside their bracket. The report keeps the worst elements, not the first."""
    got, center, radius, tol, deviation, excess, failed = _judged(got, center, radius, scale, dtype, comparison, margin)
    # relative to the expected magnitude, or to the tolerance where that is ~0
    rel = deviation / np.maximum(np.abs(center), tol)
    report = TensorReport(
        name=name,
        verdict=Verdict.FAIL if failed.any() else Verdict.PASS,
        max_abs_error=float(np.max(deviation, initial=0.0)),
        max_rel_error=float(np.max(np.where(deviation > 0, rel, 0.0), initial=0.0)),
        n_elements=int(got.size),
        n_failed=int(failed.sum()),
        n_nondifferentiable=int((radius > 0).sum()),
    )
    badness = (excess / tol).ravel()
    top = np.argpartition(-badness, WORST_SHOWN)[:WORST_SHOWN] if badness.size > WORST_SHOWN else np.arange(badness.size)
    for index in top[np.argsort(-badness[top], kind="stable")]:
        if report.verdict is Verdict.PASS and badness[index] == 0:
            break
        idx = np.unravel_index(index, got.shape)
        r = float(radius[idx])
        report.worst.append(
            Coordinate(
                index=tuple(int(i) for i in idx),
                got=float(got[idx]),
                expected=float(center[idx]),
                tolerance=float(tol[idx]),
                bracket=(float(center[idx]) - r, float(center[idx]) + r) if r > 0 else None,
            )
        )
    return report


def _judged(got, center, radius, scale, dtype, comparison, margin):
    got = np.asarray(got, np.float64)
    center = np.asarray(center, np.float64)
    radius = np.broadcast_to(np.asarray(radius, np.float64), got.shape)
    tol = np.broadcast_to(tolerance(dtype, comparison, scale) + np.asarray(margin, np.float64), got.shape)
    deviation = np.abs(got - center)
    excess = np.maximum(deviation - radius, 0.0)
    excess = np.where(np.isnan(got), np.inf, excess)
    return got, center, radius, tol, deviation, excess, excess > tol


def failed_elements(got, center, radius, scale, *, dtype, comparison, margin=0.0) -> np.ndarray:
    """Where ``compare_elementwise`` would fail ``got``, as a boolean array."""
    return _judged(got, center, radius, scale, dtype, comparison, margin)[-1]


def compare_tensors(names, got, center, radius, scale, *, dtype, comparison, margins=None) -> list[TensorReport]:
    """``compare_elementwise`` over parallel lists of named tensors (``margins``: one
    per tensor, default none)."""
    margins = [0.0] * len(names) if margins is None else margins
    return [
        compare_elementwise(g, c, r, s, dtype=dtype, comparison=comparison, name=n, margin=m)
        for n, g, c, r, s, m in zip(names, got, center, radius, scale, margins, strict=True)
    ]


def failing(reports) -> list[TensorReport]:
    return [t for t in reports if t.verdict is Verdict.FAIL]


def disagreement(a: StepResult, b: StepResult, rel: float) -> str | None:
    """Why two results of identical calls differ beyond ``rel`` (0.0: bitwise), or ``None``."""
    pairs = [("loss", np.asarray(a.loss), np.asarray(b.loss))]
    pairs += [(f"gradient {i}", np.asarray(x), np.asarray(y)) for i, (x, y) in enumerate(zip(flat(a.grads), flat(b.grads)))]
    for label, x, y in pairs:
        if x.shape != y.shape:
            return f"{label} changed shape from {x.shape} to {y.shape}"
        if rel == 0.0:
            if not np.array_equal(x, y, equal_nan=True):
                return f"{label} differs: max abs difference {float(np.max(np.abs(x.astype(float) - y))):.3g} (expected bitwise equal)"
        elif not np.allclose(x, y, rtol=rel, atol=rel * float(np.max(np.abs(x), initial=0.0))):
            return f"{label} differs beyond the declared nondeterminism {rel:g}"
    return None


def compare_gradients(grads, expected, *, dtype, comparison="gradient", center=None, radius_factor=1.0) -> list[TensorReport]:
    """Judge ``[(dW, db), ...]`` against the oracle's ``expected`` (or against
    ``center``, another answer, for the properties), with the oracle's brackets
    widened by ``radius_factor`` and its error scales."""
    centers = flat(expected.center) if center is None else [np.asarray(c, np.float64) for c in flat(center)]
    radii = [radius_factor * r for r in flat(expected.radius)]
    return compare_tensors(tensor_names(len(expected.center)), flat(grads), centers, radii, flat(expected.scale),
                           dtype=dtype, comparison=comparison)
