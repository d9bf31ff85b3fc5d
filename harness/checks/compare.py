"""Comparing answers: tensors against expected values within tolerances, and two
answers to identical calls against each other (``agreement``).

``compare_tensors`` is the one routine behind every check that judges values (the
loss, the gradients, dL/dx, the metamorphic properties); each element passes within
``tolerance(dtype, comparison, scale)`` of its expected center, or anywhere inside
its bracket ``center +- radius`` where it is non-differentiable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.checks.trial import flat, tensor_names
from harness.core.protocol import StepResult
from harness.core.results import Coordinate, TensorReport, Verdict
from harness.core.tolerances import tolerance

WORST_SHOWN = 5


def compare_elementwise(got, center, radius, scale, *, dtype, comparison, name, margin=0.0) -> TensorReport:
    """``judged_elements``'s report alone."""
    return judged_elements(got, center, radius, scale, dtype=dtype, comparison=comparison, name=name, margin=margin)[0]


def judged_elements(got, center, radius, scale, *, dtype, comparison, name, margin=0.0):
    """``(TensorReport, failed)``: judge ``got`` element by element against ``center +-
    radius`` with the dtype's tolerance (plus ``margin``: the expected value's own
    uncertainty, where the oracle is not exact), and where it fails; elements with ``radius > 0`` are non-differentiable and pass
    anywhere inside their bracket. The report keeps the worst elements, not the first.

    An element whose tolerance is not finite, or not smaller than the largest
    ``|center|`` of its tensor (the magnitude the tensor judges), cannot be judged in
    ``dtype``: a wrong answer -- all zeros, say -- would pass there. Such elements are
    counted (``n_unjudged``) and make the tensor INCONCLUSIVE unless it fails
    elsewhere; they never pass. One still fails when it is outside even that
    tolerance, or not finite where a finite value is expected."""
    j = _judged(got, center, radius, scale, dtype, comparison, margin)
    got, center, radius, tol, deviation, failed, unjudged = j.got, j.center, j.radius, j.tol, j.deviation, j.failed, j.unjudged
    with np.errstate(all="ignore"):
        # relative to the expected magnitude, or to the tolerance where that is ~0
        # (every value finite and every tolerance positive: no NaN to guard against)
        if j.finite:  # into one temporary
            rel = np.maximum(j.abs_center, tol)
            rel = np.divide(deviation, rel, out=rel) if rel.ndim else deviation / rel
        else:
            rel = np.where(deviation > 0, deviation / np.maximum(j.abs_center, tol), 0.0)
        ratio = j.excess / tol if j.finite else np.where(np.isfinite(tol), j.excess / tol, 0.0)
    any_failed, any_unjudged = bool(failed.any()), bool(unjudged.any())
    verdict = Verdict.FAIL if any_failed else Verdict.INCONCLUSIVE if any_unjudged else Verdict.PASS
    report = TensorReport(
        name=name,
        verdict=verdict,
        max_abs_error=float(np.max(deviation, initial=0.0)),
        max_rel_error=float(np.nanmax(rel, initial=0.0)),
        n_elements=int(got.size),
        n_failed=int(failed.sum()),
        n_nondifferentiable=int(np.count_nonzero(radius > 0)) if j.bracketed else 0,
        n_unjudged=int((unjudged & ~failed).sum()) if any_unjudged else 0,
    )
    if report.n_unjudged:
        worst_tol = float(np.max(np.where(unjudged & ~failed, tol, -np.inf)))
        report.message = (f"{report.n_unjudged} element(s) cannot be judged in {np.dtype(dtype).name}: tolerance "
                          + (f"{worst_tol:.3g} not below the tensor's largest expected magnitude {j.magnitude:.3g}"
                             if np.isfinite(worst_tol) and np.isfinite(j.magnitude) else "not finite"))
    # failed elements first (worst first), then the unjudged ones, then the rest
    if any_failed or any_unjudged or not j.finite:
        rank = np.nan_to_num(np.where(failed, 2.0 + ratio, np.where(unjudged, 1.0, np.minimum(ratio, 1.0))), nan=np.inf).ravel()
    else:  # every element within its tolerance: its ratio is already in [0, 1]
        rank = ratio.ravel()
    top = _largest(rank, WORST_SHOWN)
    for index in top[np.argsort(-rank[top], kind="stable")]:
        if report.verdict is Verdict.PASS and rank[index] == 0:
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
    return report, failed


def _largest(rank, count: int) -> np.ndarray:
    """Indices of the ``count`` largest entries of ``rank`` (>= 0), in no order: among its
    nonzero entries only (a correct answer's are mostly exact zeros, over which
    argpartition of a million elements takes 50 ms); over a large array, among the
    blocks with the largest maxima (``_largest_by_blocks``)."""
    if rank.size <= count:
        return np.arange(rank.size)
    if rank.size >= 64 * _BLOCK and count * _BLOCK * 4 <= rank.size:
        return _largest_by_blocks(rank, count)
    if np.count_nonzero(rank) > rank.size // 2:  # mostly nonzero: gathering them first costs more than it saves
        return np.argpartition(rank, rank.size - count)[-count:]
    candidates = np.flatnonzero(rank)
    if candidates.size < count:  # the rest are zeros, never shown for a pass
        return np.concatenate([candidates, np.flatnonzero(rank == 0)[:count - candidates.size]])
    return candidates[np.argpartition(rank[candidates], candidates.size - count)[-count:]]


_BLOCK = 1024


def _largest_by_blocks(rank, count: int) -> np.ndarray:
    """``_largest`` over a large array: the maximum of each block of ``_BLOCK`` entries
    (one reduction, no temporary the size of ``rank``), then the ``count`` largest
    entries among the ``count`` blocks with the largest maxima. Exact: the blocks
    holding the ``count`` largest entries have maxima at least the ``count``-th largest
    entry, so ``count`` blocks of largest maxima hold ``count`` entries at least as large
    as it (among equal entries, which one is taken is arbitrary, as argpartition's is).
    A NaN ranks above everything, as in argpartition."""
    flat = rank.reshape(-1)
    whole = flat.size - flat.size % _BLOCK
    maxima = flat[:whole].reshape(-1, _BLOCK).max(axis=1)
    if whole < flat.size:
        maxima = np.append(maxima, flat[whole:].max())
    blocks = np.argpartition(maxima, maxima.size - count)[-count:]
    candidates = np.concatenate([np.arange(b * _BLOCK, min((b + 1) * _BLOCK, flat.size)) for b in blocks])
    return candidates[np.argpartition(flat[candidates], candidates.size - count)[-count:]]


@dataclass(frozen=True)
class _Judgement:
    got: np.ndarray
    center: np.ndarray
    radius: np.ndarray
    tol: np.ndarray
    deviation: np.ndarray
    excess: np.ndarray
    failed: np.ndarray
    unjudged: np.ndarray
    magnitude: float
    abs_center: np.ndarray
    finite: bool  # every value, expected value and tolerance finite
    bracketed: bool  # some radius is positive


def _judged(got, center, radius, scale, dtype, comparison, margin) -> _Judgement:
    got = np.asarray(got, np.float64)
    center = np.asarray(center, np.float64)
    radius = np.asarray(radius, np.float64)
    bracketed = bool(np.any(radius > 0))
    radius = np.broadcast_to(radius, got.shape)
    with np.errstate(all="ignore"):
        tol = tolerance(dtype, comparison, scale)
        margin = np.asarray(margin, np.float64)
        if not margin.ndim and margin == 0:
            pass  # (no margin: no pass over the tolerances)
        elif np.ndim(tol) and np.broadcast_shapes(np.shape(tol), margin.shape) == np.shape(tol):
            tol += margin  # (tolerance's own fresh array)
        else:
            tol = tol + margin
        tol = np.broadcast_to(tol, got.shape)
        abs_center = np.abs(center)
        magnitude = float(np.max(abs_center, initial=0.0))
        # (max|got| finite iff both extremes are: two reductions, no temporary |got|)
        if np.isfinite(magnitude) and (not got.size or (np.isfinite(np.max(got)) and np.isfinite(np.min(got)))) \
                and np.isfinite(np.max(tol, initial=0.0)):
            # The common case, in a third of the passes over a million elements: nothing
            # is NaN or infinite, so equal values need no separate test
            deviation = np.subtract(got, center)
            deviation = np.abs(deviation, out=deviation) if deviation.ndim else np.abs(deviation)
            excess = np.maximum(deviation - radius, 0.0) if bracketed else deviation
            failed = excess > tol
            unjudged = tol >= magnitude if magnitude > 0 else np.zeros(got.shape, bool)
            return _Judgement(got, center, radius, tol, deviation, excess, failed, unjudged, magnitude, abs_center,
                              True, bracketed)
        unjudged = ~np.isfinite(tol) | ~np.isfinite(center) | ((magnitude > 0) & (tol >= magnitude))
        # equal values (an infinity or NaN in the same place included) do not deviate
        same = (got == center) | (np.isnan(got) & np.isnan(center))
        deviation = np.where(same, 0.0, np.abs(got - center))
        excess = np.maximum(deviation - radius, 0.0)
        excess = np.where(np.isnan(excess), np.inf, excess)
        failed = (np.isfinite(tol) & (excess > tol)) | (~np.isfinite(got) & np.isfinite(center))
    return _Judgement(got, center, radius, tol, deviation, excess, failed, unjudged, magnitude, abs_center, False, bracketed)


def largest_deviation(got, center) -> float:
    """``max |got - center|`` in float64 over all elements, in one temporary (0 for none;
    NaN or infinite where either is: an infinity less one, or NaN, is never within a
    tolerance). The quick passes of the mapping checks hold it to the least tolerance
    of a tensor before any elementwise comparison."""
    with np.errstate(all="ignore"):
        deviation = np.subtract(np.asarray(got, np.float64), np.asarray(center, np.float64))
        np.abs(deviation, out=deviation)
        return float(np.max(deviation, initial=0.0))


def failed_elements(got, center, radius, scale, *, dtype, comparison, margin=0.0) -> np.ndarray:
    """Where ``compare_elementwise`` would fail ``got``, as a boolean array."""
    return _judged(got, center, radius, scale, dtype, comparison, margin).failed


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


def unjudged(reports) -> list[TensorReport]:
    return [t for t in reports if t.verdict is Verdict.INCONCLUSIVE]


def overall(reports) -> Verdict:
    """A check's verdict from its tensors: FAIL if any fails, else INCONCLUSIVE if any
    cannot be judged, else PASS."""
    return Verdict.FAIL if failing(reports) else Verdict.INCONCLUSIVE if unjudged(reports) else Verdict.PASS


# --- two answers to identical calls ------------------------------------------------------------

IDENTICAL, ROUNDING, DECLARED, UNJUDGED, DIFFER = "identical", "rounding", "declared", "unjudged", "differ"


@dataclass(frozen=True)
class Agreement:
    """How two answers to identical calls compare: ``IDENTICAL`` (bitwise), ``ROUNDING``
    (every element within the tolerance its comparison with the oracle gets),
    ``DECLARED`` (within the implementation's declared nondeterminism), ``UNJUDGED``
    (they differ where no tolerance can judge) or ``DIFFER`` (beyond all of these).
    ``spread`` is the RMS of ``|a - b| / tolerance`` over every element and
    ``relative`` the largest ``max|a - b| / max|a|`` of any tensor."""

    kind: str
    why: str = ""
    spread: float = 0.0
    relative: float = 0.0

    @property
    def agrees(self) -> bool:
        return self.kind in (IDENTICAL, ROUNDING, DECLARED)


def _relative(difference, first) -> float:
    """``max|a - b| / max|a|`` of one tensor: 0 where they agree, infinite where ``a`` is
    all zeros and ``b`` is not (a Python float division would raise there)."""
    if not np.any(difference):
        return 0.0
    peak = float(np.max(np.abs(first), initial=0.0))
    largest = float(np.max(difference, initial=0.0))
    return largest / peak if peak > 0 else math.inf


def agreement(a: StepResult, b: StepResult, expected, *, dtype, nondeterminism: float = 0.0,
              strict: bool = False) -> Agreement:
    """The one definition of "two answers agree" (``deterministic`` and
    ``no_state_between_calls`` both use it). Each element of ``b`` is judged against
    ``a`` by ``compare_elementwise`` with the oracle's error ``scale`` (``expected``:
    the oracle's answer for the case both were asked): a difference a correct
    implementation's own rounding can make is no disagreement, unless ``strict``
    demands bitwise equality."""
    names = ["loss", *tensor_names(len(expected.center))]
    pairs = list(zip(names, [np.asarray(a.loss), *map(np.asarray, flat(a.grads))],
                     [np.asarray(b.loss), *map(np.asarray, flat(b.grads))]))
    if len(a.grads) != len(b.grads):
        return Agreement(DIFFER, f"{len(a.grads)} gradient pairs, then {len(b.grads)}")
    for label, x, y in pairs:
        if x.shape != y.shape:
            return Agreement(DIFFER, f"{label} changed shape from {x.shape} to {y.shape}")
    if all(np.array_equal(x, y, equal_nan=True) for _, x, y in pairs):
        return Agreement(IDENTICAL)
    scales = [expected.loss_scale, *flat(expected.scale)]
    with np.errstate(all="ignore"):
        x64 = [np.asarray(x, np.float64) for _, x, _ in pairs]
        y64 = [np.asarray(y, np.float64) for _, _, y in pairs]
        differences = [_difference(x, y) for x, y in zip(x64, y64)]
        ratios = [np.nan_to_num(d / tolerance(dtype, "loss" if i == 0 else "gradient", s), nan=np.inf)
                  for i, (d, s) in enumerate(zip(differences, scales))]
        spread = float(np.sqrt(np.mean(np.concatenate([r.ravel() ** 2 for r in ratios]))))
        relative = max(_relative(d, x) for d, x in zip(differences, x64))
    relative = relative if np.isfinite(relative) else np.inf
    worst = max(range(len(pairs)), key=lambda i: float(np.max(ratios[i], initial=0.0)))
    label = pairs[worst][0]
    largest = float(np.max(differences[worst], initial=0.0))
    if strict:
        return Agreement(DIFFER, f"{label} differs: max abs difference {largest:.3g} (bitwise equality demanded)", spread, relative)
    reports = [compare_elementwise(y, x, 0.0, s, dtype=dtype, comparison="loss" if i == 0 else "gradient", name=n)
               for i, ((n, x, y), s) in enumerate(zip(pairs, scales))]
    if not failing(reports) and not unjudged(reports):
        return Agreement(ROUNDING, f"largest difference {largest:.3g} in {label}, {float(np.max(ratios[worst])):.2g} of "
                                   f"the {np.dtype(dtype).name} rounding tolerance", spread, relative)
    declared = nondeterminism > 0 and all(
        np.allclose(x, y, rtol=nondeterminism, atol=nondeterminism * float(np.max(np.abs(x), initial=0.0)), equal_nan=True)
        for x, y in zip(x64, y64))
    if declared:
        return Agreement(DECLARED, f"within the declared nondeterminism {nondeterminism:g}", spread, relative)
    if not failing(reports):
        return Agreement(UNJUDGED, "; ".join(f"{t.name}: {t.message}" for t in unjudged(reports)), spread, relative)
    beyond = f" and beyond the declared nondeterminism {nondeterminism:g}" if nondeterminism > 0 else ""
    return Agreement(DIFFER, f"{label} differs by up to {largest:.3g}, {float(np.max(ratios[worst])):.3g} times the "
                             f"{np.dtype(dtype).name} rounding tolerance{beyond}", spread, relative)


def _difference(x, y):
    """|x - y| elementwise, 0 where both hold the same value (NaN and infinities included)."""
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    return np.where(same, 0.0, np.abs(x - y))


def compare_gradients(grads, expected, *, dtype, comparison="gradient", center=None, radius_factor=1.0) -> list[TensorReport]:
    """Judge ``[(dW, db), ...]`` against the oracle's ``expected`` (or against
    ``center``, another answer, for the properties), with the oracle's brackets
    widened by ``radius_factor`` and its error scales."""
    centers = flat(expected.center) if center is None else [np.asarray(c, np.float64) for c in flat(center)]
    radii = [radius_factor * r for r in flat(expected.radius)]
    floors = None if expected.floor is None else flat(expected.floor)  # (flush to zero: harness.core.oracle)
    return compare_tensors(tensor_names(len(expected.center)), flat(grads), centers, radii, flat(expected.scale),
                           dtype=dtype, comparison=comparison, margins=floors)
