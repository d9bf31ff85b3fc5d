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

For any mapping (``harness.core.mapping_oracle``), where no absolute-value forward
exists, an element's scale is ``mapping_scale``: the sum of
- its accumulation scale ``sum_j |c_j| |J_jk|``: the absolute terms of the
  contraction that produces it (the bound above);
- its rounding sensitivity ``|g(x~) - g(x)| / delta`` with ``x~ = x (1 + delta r)``,
  r random signs, ``delta = sensitivity_step(dtype)`` (4 eps, or 1e-8 where 4 eps
  would drown in the oracle's own error): how far the exact answer moves, per unit of
  relative perturbation, when the inputs move by their own rounding. A correct dtype-d implementation computes the exact derivative of slightly
  perturbed data (backward stability), so this is what it may be off by; it is what
  lets layer_norm on data with a large offset or softmax on large logits pass in
  float32 without loosening anything else;
- a floor, the largest accumulation scale in the same tensor. An intermediate
  rounded to eps relative (the forward's output reused by the backward: s (1 - s) for
  a sigmoid, 1 - tanh^2) moves an element by eps times a derivative bounded by the
  tensor's largest, not by the element's own: float32 sigmoid at x = 17 rounds s to
  1 and the gradient to 0, an error of 100% relative but of eps |c| absolute.
The oracle's own uncertainty comes on top (``ORACLE_ERROR_FACTOR`` times Richardson's
error estimate; nothing for the complex step).

One more allowance, ``reuse_allowance``, for the rounding of the outputs a backward
reuses. Backward stability in the inputs does not cover a backward that computes its
derivative from the forward's rounded outputs (tanh's ``1 - y^2``, sigmoid's
``s (1 - s)``, softmax's ``s (c - <s, c>)``, a normalisation's x-hat): there the
derivative is a difference of terms of the outputs' size, and where it is far smaller
than they are (a saturated tanh, sigmoid or softmax; batch norm over 2 samples, whose
normalised values sit at +-1 whatever the input) it carries eps times the outputs, not
eps times itself: tanh'(17) = 6.8e-15 comes back 0.4% off from torch in float64, and
sigmoid'(17) = 4e-8 comes back 0 in float32. Derivation, along a direction w (one input
element for the elementwise comparison, the tangent for the JVP, a probe's direction):
write y_j for an output element and D, D2 for its first and second derivatives along w
(``Differentiator.curvature``). A backward that holds y_j rounded, y_j + dy with |dy| <=
``REUSE_ROUNDINGS`` eps |y_j| (the output's own rounding, and that of the few operations
of its size that use it: y^2, 1 - s, s c), computes the derivative at the point t where
y_j(t) = y_j + dy: t = dy / D where D^2 >> D2 dy, or sqrt(2 dy / D2) next to a
stationary point, and there the derivative has moved by D2 t. Hence the allowance
``sum_j |c_j| |D2_j| min(dy_j / |D_j|, sqrt(2 dy_j / |D2_j|))``. It is zero for a linear
map (D2 = 0) and O(eps) relative where the derivative is of the outputs' size, so it
loosens nothing there; it is only measured for what would fail without it, and it never
reaches past the magnitude the element judges without making it "cannot be judged"
(float32 sigmoid at |x| >= 17, whose every derivative is below eps |c|, is such a case).

Declared terms (``terms_allowance``). The accumulation scale sees only the Jacobian, not
the terms a backward forms on the way: where they cancel, a correct answer carries eps
times them. layer_norm of width 1 has y = beta and a zero input gradient, formed as rstd
(gh - mean gh) with rstd = 1/sqrt(eps) = 316: torch leaves 64-256 eps64 |gh| (the
accumulation scale is 0 there, and so is the rounding sensitivity: the exact map is
constant). batch_norm over 2 samples (xhat = +-1 whatever x) forms its JVP and VJP from
terms of size rstd |u| and rstd |gh| that cancel to almost nothing. So an operator may
declare, per element, T = the sum of the absolute values of the terms it is computed
from (``Mapping.vjp_terms`` / ``jvp_terms``: the computation on absolute values, derived
beside the operator; its sums, whose rounding grows with their length, are already in
the accumulation scale). A fixed, small number of operations on values bounded by T
(a product by rstd, the subtractions, a product by xhat: eight roundings at most, each of
at most eps/2 T) errs by at most ``TERM_ROUNDINGS`` = 4 eps T (a deterministic bound, so
no lambda of 16; torch's worst, 256 eps64 |gh| at width 1, is a tenth of it). The
part of T that does not cancel is the Jacobian's own contraction, whose rounding the
tolerance covers already (16 eps times the accumulation scale A), so an element compared
with the oracle gets ``TERM_ROUNDINGS eps max(T - A, 0)`` added to its margin, as the reuse
allowance is: nothing where nothing cancels (T = A). The transpose identity and large
probes, which have no per-element A, add ``TERM_ROUNDINGS eps T`` per element, weighed by
|u_k| (|v_j|, |w_k|), summed worst case: the cancelling terms of one row or channel share
rstd and err together.
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
    # A mapping's forward against its float64 reference: each output element's scale is
    # its magnitude plus its rounding sensitivity plus the output's largest magnitude
    # (see mapping_scale); 16 as for the loss.
    ("float64", "forward"): 16.0,
    ("float32", "forward"): 16.0,
    # <u, VJP(v)> against <JVP(u), v>, both the implementation's: two sums of products
    # of answers that each carry their own rounding, so twice the single factor.
    ("float64", "transpose"): 32.0,
    ("float32", "transpose"): 32.0,
}

# Roundings of an output's size a backward may make on the outputs it reuses (see
# reuse_allowance): the output's own (eps / 2) and a few more of its size.
REUSE_ROUNDINGS = 4.0

# eps-multiples of a declared term's size its rounding may reach (see terms_allowance):
# eight operations at most, each rounding by at most eps / 2 of the terms' sum.
TERM_ROUNDINGS = 4.0

# Richardson's error estimate measures the lower-order entry of its tableau, so it
# overstates the error of the entry it keeps (by 10-1000x in the tests); 4 times it
# still covers an estimate that, by chance, came out low.
ORACLE_ERROR_FACTOR = 4.0


def sensitivity_step(dtype) -> float:
    """How far (relative, random signs) the inputs are moved to measure rounding
    sensitivity: 4 eps of the dtype, so that a kink or tie within rounding of an element
    widens its tolerance as it should; but at least 1e-8, which Richardson's error (about
    1e-12 relative) can resolve; the change is then scaled per unit of perturbation."""
    return max(4.0 * eps(dtype), 1e-8)


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
    tol = f * eps(dtype) * np.asarray(scale, np.float64)
    floor = f * float(np.finfo(np.dtype(dtype)).smallest_normal)
    if isinstance(tol, np.ndarray) and tol.ndim:  # a fresh array: the floor added in place
        tol += floor
        return tol
    return tol + floor


def coarser(a, b) -> str:
    """The less precise of two dtypes (an answer is judged at the precision it has)."""
    return max(np.dtype(a), np.dtype(b), key=lambda d: np.finfo(d).eps).name


def mapping_scale(accumulation, sensitivity=0.0, floor_over=None):
    """An element's error scale for a mapping (derivation above): its accumulation scale,
    plus its rounding sensitivity, plus the largest accumulation scale of the tensor
    (``floor_over``: the array to take it from; default ``accumulation``)."""
    accumulation = np.asarray(accumulation, np.float64)
    peak = np.asarray(accumulation if floor_over is None else floor_over, np.float64)
    top = float(np.max(peak, initial=0.0))
    if not np.isfinite(top):  # the largest finite one (the boolean mask only where needed)
        top = float(np.max(peak[np.isfinite(peak)], initial=0.0))
    sensitivity = np.asarray(sensitivity, np.float64)
    if not np.any(sensitivity):  # all zero (as before it is measured): the same sum, one pass and temporary less
        return accumulation + sensitivity + top if sensitivity.shape != accumulation.shape and sensitivity.ndim \
            else accumulation + top
    return accumulation + sensitivity + top


def terms_allowance(terms, dtype, accumulation=0.0):
    """How far an element may be off through the rounding of the terms the mapping
    declares for it (``None``: nothing declared), beyond its ``accumulation`` scale where
    that is known (derivation above)."""
    if terms is None:
        return 0.0
    return TERM_ROUNDINGS * eps(dtype) * np.maximum(np.asarray(terms, np.float64) - accumulation, 0.0)


def reuse_allowance(first, second, outputs, dtype):
    """Per output element, how far a derivative along a direction may be off when the
    backward computes it from the outputs rounded to ``dtype`` (derivation above):
    ``|D2| min(dy / |D|, sqrt(2 dy / |D2|))`` with ``dy = REUSE_ROUNDINGS eps |y|``;
    zero where the second derivative ``second`` is (unresolved or a linear map); infinite
    where a derivative or the output is not finite (nothing bounds it there)."""
    first, second = np.abs(np.asarray(first, np.float64)), np.abs(np.asarray(second, np.float64))
    moved = REUSE_ROUNDINGS * eps(dtype) * np.abs(np.asarray(outputs, np.float64))
    with np.errstate(all="ignore"):
        along = np.where(first > 0, second * moved / first, np.inf)
        stationary = np.sqrt(2 * moved * second)
        allowance = np.where(second > 0, np.fmin(along, stationary), 0.0)
        unknown = ~(np.isfinite(first) & np.isfinite(second) & np.isfinite(moved))
    return np.where(unknown, np.inf, allowance)
