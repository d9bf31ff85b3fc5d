"""Derivatives of a scalar function of one real variable, three ways, and the
Richardson tableau that extrapolates difference quotients of whole arrays.

``complex_step`` is the oracle wherever the function is real-analytic along the path
(the reference forward is: its branches test only real parts): f'(t) = Im f(t + ih)/h
has no subtraction, so h can be tiny and the result is exact to rounding.
``richardson`` extrapolates central differences over shrinking steps and reports an
error estimate; ``central_difference`` is the plain fallback. ``extrapolate`` is the
tableau itself, elementwise over arrays, for one-sided (error in every power of h)
and central (even powers only) quotients alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

COMPLEX_STEP = 1e-100

# Error expansions of the two difference quotients, in powers of the step h:
# one-sided (f(t+h) - f(t))/h = f' + a1 h + a2 h^2 + ...; central: f' + a2 h^2 + a4 h^4 + ...
ONE_SIDED, CENTRAL = 1, 2


def complex_step(f: Callable, t: float, h: float = COMPLEX_STEP) -> float:
    """f'(t) = Im f(t + i h) / h. Truncation error is O(h^2 f'''): about 1e-200 relative at h = 1e-100,
    so even a derivative that is exactly 0 comes out as 0 to any tolerance."""
    return float(np.imag(f(complex(t, h)))) / h


def central_difference(f: Callable, t: float, h: float = 1e-6) -> float:
    """(f(t+h) - f(t-h)) / 2h: error O(h^2 f''') plus rounding O(eps f / h)."""
    return float((f(t + h) - f(t - h)) / (2 * h))


def extrapolate(quotients, power_step: int, ratio: float = 2.0, rows: bool = False):
    """Richardson's tableau over difference quotients taken at steps h, h/ratio, ...:
    ``(estimate, error estimate)``, elementwise for arrays.

    Column j cancels the next term ``h^(power_step * j)`` of the error expansion
    (``power_step`` 1 for one-sided quotients, 2 for central ones). An entry's error
    estimate is its change from its two lower-order neighbours (conservative: that is
    the error of the lower-order entry). One entry is kept for all elements (with
    ``rows``, for each row along the first axis: independent problems stacked): the
    one whose 90th-percentile error estimate is smallest (past it, rounding grows
    faster than truncation shrinks). Choosing per element would pick, among a million
    elements, some whose neighbours agree by coincidence, with an error estimate far
    below their error. Where a quotient is not finite (the function left its domain),
    the estimate is NaN with an infinite error.
    """
    if not rows and all(np.ndim(q) == 0 for q in quotients):
        return _extrapolate_numbers([float(q) for q in quotients], power_step, ratio)
    quotients = [np.asarray(q, np.float64) for q in quotients]
    if not rows and quotients[-1].size > _SAMPLE:
        return _extrapolate_sampled(quotients, power_step, ratio)
    table = [[q] for q in quotients]
    lead = quotients[-1].shape[:1] if rows else ()
    best, best_err = quotients[-1], np.full(quotients[-1].shape, np.inf)
    best_score = np.full(lead, np.inf)
    for i in range(1, len(quotients)):
        for j in range(1, i + 1):
            value, err = _entry(table[i][j - 1], table[i - 1][j - 1], ratio ** (power_step * j))
            table[i].append(value)
            score = _p90(err, rows)
            better = score < best_score
            keep = better.reshape(better.shape + (1,) * (err.ndim - better.ndim))
            best, best_err = np.where(keep, table[i][j], best), np.where(keep, err, best_err)
            best_score = np.where(better, score, best_score)
    best_err = np.where(np.isfinite(best_err), best_err, np.inf)
    best = np.where(np.isfinite(best_err), best, np.nan)
    return (best, best_err) if best.ndim else (float(best), float(best_err))


_SAMPLE = 4096  # elements a percentile is taken over, at most


def _extrapolate_numbers(quotients: list, power_step: int, ratio: float) -> tuple[float, float]:
    """``extrapolate`` of plain numbers (a contracted probe's quotients): the same
    entries, error estimates and choice, in Python floats, whose arithmetic is IEEE
    double like NumPy's, without NumPy's microseconds per operation on 0-d arrays."""
    table = [[q] for q in quotients]
    best, best_err = quotients[-1], math.inf
    for i in range(1, len(quotients)):
        for j in range(1, i + 1):
            lower, before, w = table[i][j - 1], table[i - 1][j - 1], ratio ** (power_step * j)
            value = lower + (lower - before) / (w - 1)
            table[i].append(value)
            a, b = abs(value - lower), abs(value - before)
            error = math.nan if math.isnan(a) or math.isnan(b) else max(a, b)  # (np.maximum's NaN)
            if math.isfinite(error) and error < best_err:
                best, best_err = value, error
    return (best, best_err) if math.isfinite(best_err) else (math.nan, math.inf)


def _value(lower, lower_before, w):
    """Richardson's next tableau entry from ``lower`` (same step, one order less) and
    ``lower_before`` (the larger step's)."""
    step = np.subtract(lower, lower_before)
    if np.ndim(step):  # in one temporary: the same operations, in the same order
        step /= w - 1
        step += lower
        return step
    return lower + step / (w - 1)


def _entry(lower, lower_before, w):
    """``_value`` with its error estimate: its change from both."""
    value = _value(lower, lower_before, w)
    with np.errstate(invalid="ignore"):
        if np.ndim(value):
            error, other = np.subtract(value, lower), np.subtract(value, lower_before)
            np.abs(error, out=error)
            np.abs(other, out=other)
            return value, np.maximum(error, other, out=error)
        return value, np.maximum(np.abs(value - lower), np.abs(value - lower_before))


def _extrapolate_sampled(quotients, power_step: int, ratio: float):
    """``extrapolate`` without rows over a large array: the entry is chosen on the same
    evenly strided sample the percentile is taken over, and only that entry (and what it
    is built from) is computed in full: a tenth of the passes over a million elements."""
    stride = quotients[-1].size // _SAMPLE
    sampled = [q.ravel()[::stride] for q in quotients]
    table = [[q] for q in sampled]
    best, best_score = (len(quotients) - 1, 0), np.inf
    for i in range(1, len(sampled)):
        for j in range(1, i + 1):
            value, err = _entry(table[i][j - 1], table[i - 1][j - 1], ratio ** (power_step * j))
            table[i].append(value)
            score = _p90(err, False)
            if score < best_score:
                best, best_score = (i, j), score
    full = {}
    i, j = best
    if j == 0:  # no entry had a finite error estimate on the sample
        return np.full(quotients[-1].shape, np.nan), np.full(quotients[-1].shape, np.inf)
    # (a module-level helper, not a closure over itself: that cycle kept the entries, a
    # million elements each, alive until the garbage collector ran, and the next check
    # took fresh pages meanwhile)
    value, error = _entry(_full_entry(full, quotients, i, j - 1, ratio, power_step),
                          _full_entry(full, quotients, i - 1, j - 1, ratio, power_step), ratio ** (power_step * j))
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(np.sum(error)):  # every error finite (the common case): nothing to mask
            return value, error
    error = np.where(np.isfinite(error), error, np.inf)
    return np.where(np.isfinite(error), value, np.nan), error


def _full_entry(full, quotients, i, j, ratio, power_step):
    """The tableau entry (i, j) over every element, built on demand (kept in ``full``)."""
    if (i, j) not in full:
        full[i, j] = quotients[i] if j == 0 else _value(_full_entry(full, quotients, i, j - 1, ratio, power_step),
                                                           _full_entry(full, quotients, i - 1, j - 1, ratio, power_step),
                                                           ratio ** (power_step * j))
    return full[i, j]


def _p90(err, rows: bool):
    """The 90th percentile (the lower one) of the finite error estimates, per row with
    ``rows``; infinite where none is finite."""
    if not rows:
        flat = err.ravel()
        if flat.size > _SAMPLE:  # an evenly strided sample: the percentile of a million costs a partition each
            flat = flat[:: flat.size // _SAMPLE]
        finite = flat[np.isfinite(flat)]
        if finite.size == 0:
            return np.inf
        k = int(0.9 * (finite.size - 1))
        return float(np.partition(finite, k)[k])
    e = err.reshape(err.shape[0], -1)
    finite = np.isfinite(e)
    count = finite.sum(axis=1)
    if e.shape[1] == 0:
        return np.full(e.shape[0], np.inf)
    # the non-finite sort first, and the index skips them
    k = e.shape[1] - count + np.floor(0.9 * np.maximum(count - 1, 0)).astype(int)
    score = np.take_along_axis(np.sort(np.where(finite, e, -np.inf), axis=1), k[:, None], axis=1)[:, 0]
    return np.where(count > 0, score, np.inf)


def richardson(f: Callable, t: float, h: float = 1e-2, levels: int = 6, ratio: float = 2.0) -> tuple[float, float]:
    """Richardson-extrapolated central differences: ``(derivative, error estimate)``.

    Builds the Neville tableau of central differences at steps h, h/ratio, ...; each
    column cancels the next even power of h (see ``extrapolate``).
    """
    best, err = extrapolate([central_difference(f, t, h / ratio**i) for i in range(levels)], CENTRAL, ratio)
    return float(best), float(err)
