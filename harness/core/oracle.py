"""What a correct implementation must return for a case, and how sure we are.

For every gradient element the oracle gives a ``center`` (the float64 reference
backprop), a ``radius`` (non-zero only where a ReLU or leaky ReLU is on, or within
rounding of, its kink: every valid subgradient lies in ``center +- radius``) and a
``scale`` (the element's error scale, for ``harness.tolerances``). The brackets come
from interval arithmetic: the slope at an ambiguous unit is the interval
[left slope, right slope], carried through the backward pass in center/radius form.

Directional derivatives by complex step on the reference forward (exact to rounding)
prove the reference backprop; ``harness.finite_differences`` has the primitives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.core import reference
from harness.core.finite_differences import complex_step
from harness.core.spec import KINKED, NetworkSpec
from harness.core.tolerances import eps, factor


@dataclass
class Expected:
    loss: float
    loss_scale: float
    center: list  # [(dW, db), ...] float64
    radius: list
    scale: list
    dx_center: np.ndarray
    dx_radius: np.ndarray
    dx_scale: np.ndarray
    n_kink_units: int  # pre-activations treated as on a kink
    # [(dW, db), ...] and dx: how far flushing to zero can move each element (absolute;
    # see ``_expected``); ``None``: nothing allowed for it
    floor: list | None = None
    dx_floor: np.ndarray | None = None


def expected(spec: NetworkSpec, params, x, y, dtype="float64") -> Expected:
    """The oracle's answer for a case whose implementation computes in ``dtype``.

    At extreme inputs (logits near float64's range) its values or error scales may
    overflow; that is no warning to print but an answer that cannot judge, which the
    comparison reports as such (INCONCLUSIVE)."""
    with np.errstate(all="ignore"):
        return _expected(spec, params, x, y, dtype)


def _expected(spec: NetworkSpec, params, x, y, dtype) -> Expected:
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    x = np.asarray(x, np.float64)
    if spec.loss == "mse":
        y = np.asarray(y, np.float64)
    n = x.shape[0]
    kink_margin = factor(dtype, "kink") * eps(dtype)

    # Forward, with each value's error scale m (the same sums on absolute values).
    acts, mags, zs, slopes, slope_radius = [x], [np.abs(x)], [], [], []
    n_kinks = 0
    for (W, b), name in zip(params, spec.activations):
        z = acts[-1] @ W.T + b
        # Errors carried in from the inputs, each term charged at full size; no sqrt(fan_in)
        # for this sum's own rounding: carried on through the next layers' sums of |terms|,
        # it would be charged again in every one of them (at the seed size in float32,
        # 4,799 of the 5,000 elements of layer 1's dW could no longer be judged).
        mz = mags[-1] @ np.abs(W).T + np.abs(b)
        a = reference.activate(name, z)
        d = reference.activation_derivative(name, z, a)
        r = np.zeros_like(z)
        if name in KINKED:
            left, right = KINKED[name]
            on_kink = np.abs(z) <= kink_margin * mz
            n_kinks += int(on_kink.sum())
            d = np.where(on_kink, (left + right) / 2, d)
            r = np.where(on_kink, (right - left) / 2, 0.0)
        zs.append(z)
        slopes.append(d)
        slope_radius.append(r)
        acts.append(a)
        mags.append(np.abs(d) * mz + np.abs(a) + r * mz)

    out, m_out = acts[-1], mags[-1]
    loss = float(reference.loss_value(spec, out, y))
    if spec.loss == "cross_entropy":
        delta = reference.loss_gradient_wrt_output(spec, out, y)
        p = delta * n
        p[np.arange(n), y] += 1.0
        onehot = np.zeros_like(p)
        onehot[np.arange(n), y] = 1.0
        # Errors dz in the logits move p_i by p_i |sum_j p_j (dz_i - dz_j)| <= 2 p_i (1 - p_i)
        # max|dz| (softmax' = p_i (delta_ij - p_j)), and -log p_y by (1 - p_y) 2 max|dz|:
        # a saturated softmax is insensitive to them. 1 - p_i is taken as the sum of the
        # other classes, which keeps it where it is tiny. The softmax's sum over the
        # classes rounds like any length-C sum.
        z_err = m_out.max(axis=1, keepdims=True)
        classes = out.shape[1]
        rest = np.maximum(p.sum(axis=1, keepdims=True) - p, 0.0)
        delta_scale = (reduction(p, classes) + onehot + 2 * p * rest * z_err) / n
        nll = np.abs(np.log(np.maximum(p[np.arange(n), y], 1e-300)))
        # each sample's -log p_y (log-sum-exp over the classes) and the mean over the batch
        loss_scale = float(np.mean(nll + 2 * rest[np.arange(n), y] * z_err[:, 0] + reduction(1.0, classes))
                           + reduction(np.mean(nll), n))
    else:
        diff = out - y
        delta = 2.0 * diff / diff.size
        delta_scale = 2.0 * (np.abs(out) + np.abs(y) + m_out) / diff.size
        loss_scale = float(np.sum(np.abs(diff) * (np.abs(diff) + 2 * m_out)) / diff.size
                           + reduction(np.sum(diff * diff) / diff.size, diff.size))

    # Backward in center/radius form; the scale follows the same sums on absolute values.
    # Flush-to-zero (compiled code runs with it; so may any float32 kernel): a result
    # below the dtype's smallest normal number T becomes 0, an absolute error of up to
    # T that no relative bound covers, and that later layers multiply by their weights
    # (a saturated sigmoid's derivative ~1e-40, flushed, then times weights of ~100:
    # dL/dx off by 4e-37 in float32, 20 times T). ``df`` bounds it for dL/da: each
    # product and partial sum may flush (T each), and a flushed slope or activation
    # takes T times the factor it multiplies. In float64, T = 2e-308.
    tiny = float(np.finfo(np.dtype(dtype)).smallest_normal)
    center, radius, scale = [None] * len(params), [None] * len(params), [None] * len(params)
    floor = [None] * len(params)
    dc, dr, ds = delta, np.zeros_like(delta), delta_scale
    df = np.full_like(delta, tiny)
    for i in reversed(range(len(params))):
        W, _ = params[i]
        d, r = slopes[i], slope_radius[i]
        smooth = spec.activations[i] in ("tanh", "sigmoid")
        # [dc +- dr] * [d +- r]  contains  dc*d +- (|dc| r + dr |d| + dr r)
        zc = dc * d
        zr = np.abs(dc) * r + dr * (np.abs(d) + r)
        # error in act'(z) from z's own error: |act''| <= 1 for tanh and sigmoid
        zs_ = ds * (np.abs(d) + r) + (np.abs(dc) * mags[i + 1] if smooth else 0.0)
        a_prev, m_prev = acts[i], mags[i]
        zf = df * (np.abs(d) + r) + tiny * (np.abs(dc) + dr) + tiny
        floor[i] = (zf.T @ np.abs(a_prev) + tiny * (np.abs(zc).sum(axis=0)[:, None] + 2 * n),
                    zf.sum(axis=0) + tiny * n)
        df = zf @ np.abs(W) + tiny * 2 * W.shape[0]
        center[i] = (zc.T @ a_prev, zc.sum(axis=0))
        radius[i] = (zr.T @ np.abs(a_prev), zr.sum(axis=0))
        # errors carried in, plus the rounding of the sums over the batch (dW, db) and
        # over this layer's outputs (dL/da of the layer below)
        scale[i] = (zs_.T @ m_prev + reduction(np.abs(zc).T @ np.abs(a_prev), n),
                    np.abs(zs_).sum(axis=0) + reduction(np.abs(zc).sum(axis=0), n))
        dc, dr = zc @ W, zr @ np.abs(W)
        ds = zs_ @ np.abs(W) + reduction(np.abs(zc) @ np.abs(W), W.shape[0])
    return Expected(loss, loss_scale, center, radius, scale, dc, dr, ds, n_kinks, floor, df)


def reduction(terms, n: int):
    """The error scale of the rounding of a length-``n`` sum whose absolute terms add
    up to ``terms``: ``sqrt(n) * terms``.

    Rounding a length-n sum errs by at most ``gamma_n * sum|x_i| ~ n eps sum|x_i|``
    (the classical worst case, Higham 2002, sec. 4.2). Higham & Mary ("A new approach to
    probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5), 2019) show that
    with rounding errors that are independent and of mean zero, the error is at most
    ``lambda * sqrt(n) * eps * sum|x_i|`` with probability ``1 - 2 exp(-lambda^2 / 2)``.
    Taking that bound, with ``lambda`` in the tolerance's factor (16:
    1 - 2e-56), every tolerance grows with the length of every sum that produced its
    element -- a bias gradient summed over a batch of 100,000 gets a scale ~316 times
    its plain sum of |terms| -- without the ``n``-fold worst case that would let a
    float32-sized error in float64 pass. Recursive summation of terms of one sign
    (numpy's sum along an axis, an accumulation loop) does err like ``sqrt(n)``: the
    bias of a 3-4-2 network at batch 60,000 was measured at 49 eps times its sum of
    |terms|."""
    return np.sqrt(float(n)) * np.asarray(terms, np.float64)


def directional_derivative(spec: NetworkSpec, params, x, y, direction) -> float:
    """d loss / dt at t=0 along ``params + t * direction``, by complex step on the
    float64 reference forward (exact to rounding; no subtraction, so no cancellation)."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    x = np.asarray(x, np.float64)
    if spec.loss == "mse":
        y = np.asarray(y, np.float64)

    def along(t):
        moved = [(W + t * dW, b + t * db) for (W, b), (dW, db) in zip(params, direction)]
        return reference.loss(spec, moved, x, y)

    with np.errstate(all="ignore"):  # an overflow makes the probe unjudgeable, not a warning
        return complex_step(along, 0.0)
