"""How far a correct implementation may stray from the float64 oracle, per dtype.

A tolerance is ``FACTORS[dtype, comparison] * eps(dtype) * scale``, where ``scale``
is an element's own error scale from ``harness.core.oracle``: the same computation run
on absolute values (|x|, |W|, |dL/dz|, ...), plus, for every sum that produced the
element, ``sqrt(n) * sum(|terms|)`` for its length ``n`` (``oracle.reduction``). The
classical bound on the rounding of a length-n sum is ``n * eps * sum(|terms|)``; the
probabilistic one of Higham & Mary (SIAM J. Sci. Comput. 2019), ``lambda * sqrt(n) *
eps * sum(|terms|)`` with probability ``1 - 2 exp(-lambda^2 / 2)``, is what correct
implementations show (recursive sums of terms of one sign reach it; pairwise or
blocked sums stay well below). Scaling by the sum of absolute terms makes the
tolerance follow each element, so nothing loosens as arrays grow except with the
length of the sums themselves, and a float64 answer carrying float32 rounding
(``2**29`` times larger) cannot hide under it: at a batch of 100,000 the sqrt(n)
costs a factor 316 of that margin.

A tolerance that comes out non-finite, or not smaller than the values it judges,
cannot tell a right answer from a wrong one: ``harness.checks.compare`` then calls
the element "cannot be judged" (INCONCLUSIVE), never PASS.
"""

from __future__ import annotations

import numpy as np

# Factor on eps * scale, keyed by (dtype the implementation computes in, comparison).
# 16: the lambda of the probabilistic bound (failure probability 2 exp(-128) per sum),
# and a wide margin over the typical error, while an error of 1e-6 relative in
# float64 (eps 2.2e-16) still exceeds it by ~10^6 at a batch of 100,000.
FACTORS = {
    ("float64", "loss"): 16.0,
    ("float32", "loss"): 16.0,
    ("float64", "gradient"): 16.0,
    ("float32", "gradient"): 16.0,
    # A directional derivative sums P products v_i * e_i of independent signs, so its
    # error grows like sqrt(sum (eps * scale_i)^2); 16 again leaves wide margin.
    ("float64", "probe"): 16.0,
    ("float32", "probe"): 16.0,
    # A pre-activation within this many eps * scale of zero may land on either side
    # of a kink in a correct implementation's rounding: treat it as on the kink.
    ("float64", "kink"): 16.0,
    ("float32", "kink"): 16.0,
    # Two ways of computing the same batch gradient (batch mean vs mean of samples,
    # permuted, duplicated) differ by rounding in both, so twice the usual factor.
    ("float64", "property"): 32.0,
    ("float32", "property"): 32.0,
}


def eps(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def factor(dtype, comparison: str) -> float:
    key = (np.dtype(dtype).name, comparison)
    if key not in FACTORS:
        raise ValueError(f"no tolerance for dtype={key[0]!r}, comparison={comparison!r}")
    return FACTORS[key]


def tolerance(dtype, comparison: str, scale):
    """Absolute tolerance for values whose error scale is ``scale``.

    Plus an underflow floor: values below the dtype's smallest normal number (a
    softmax probability of e^-150 in float32, say) flush to zero, an absolute error
    that no relative bound covers; at 1.2e-38 (float32) it cannot hide a real bug.
    """
    f = factor(dtype, comparison)
    return f * eps(dtype) * np.asarray(scale, np.float64) + f * float(np.finfo(np.dtype(dtype)).smallest_normal)


def coarser(a, b) -> str:
    """The less precise of two dtypes (an answer is judged at the precision it has)."""
    return max(np.dtype(a), np.dtype(b), key=lambda d: np.finfo(d).eps).name
