"""Derivatives of a scalar function of one real variable, three ways.

``complex_step`` is the oracle wherever the function is real-analytic along the path
(the reference forward is: its branches test only real parts): f'(t) = Im f(t + ih)/h
has no subtraction, so h can be tiny and the result is exact to rounding.
``richardson`` extrapolates central differences over shrinking steps and reports an
error estimate; ``central_difference`` is the plain fallback.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

COMPLEX_STEP = 1e-100


def complex_step(f: Callable, t: float, h: float = COMPLEX_STEP) -> float:
    """f'(t) = Im f(t + i h) / h. Truncation error is O(h^2 f'''): about 1e-200 relative at h = 1e-100,
    so even a derivative that is exactly 0 comes out as 0 to any tolerance."""
    return float(np.imag(f(complex(t, h)))) / h


def central_difference(f: Callable, t: float, h: float = 1e-6) -> float:
    """(f(t+h) - f(t-h)) / 2h: error O(h^2 f''') plus rounding O(eps f / h)."""
    return float((f(t + h) - f(t - h)) / (2 * h))


def richardson(f: Callable, t: float, h: float = 1e-2, levels: int = 6, ratio: float = 2.0) -> tuple[float, float]:
    """Richardson-extrapolated central differences: ``(derivative, error estimate)``.

    Builds the Neville tableau of central differences at steps h, h/ratio, ...; each
    column cancels the next even power of h. The estimate is the change between the
    two most accurate entries, and the best entry is the one where that change is
    smallest (past it, rounding grows faster than truncation shrinks).
    """
    table = [[central_difference(f, t, h / ratio**i)] for i in range(levels)]
    best, best_err = table[0][0], np.inf
    for i in range(1, levels):
        for j in range(1, i + 1):
            w = ratio ** (2 * j)
            table[i].append(table[i][j - 1] + (table[i][j - 1] - table[i - 1][j - 1]) / (w - 1))
            err = max(abs(table[i][j] - table[i][j - 1]), abs(table[i][j] - table[i - 1][j - 1]))
            if err < best_err:
                best, best_err = table[i][j], err
    return float(best), float(best_err)
