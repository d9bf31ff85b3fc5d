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


def expected(spec: NetworkSpec, params, x, y, dtype="float64") -> Expected:
    """The oracle's answer for a case whose implementation computes in ``dtype``."""
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
        # softmax' moves p_i by at most 2 p_i max_j |dz_j|: the logits' error scale feeds in
        z_err = m_out.max(axis=1, keepdims=True)
        delta_scale = (p + onehot + 2 * p * z_err) / n
        loss_scale = float(np.mean(np.abs(np.log(np.maximum(p[np.arange(n), y], 1e-300))) + 2 * z_err[:, 0]))
    else:
        diff = out - y
        delta = 2.0 * diff / diff.size
        delta_scale = 2.0 * (np.abs(out) + np.abs(y) + m_out) / diff.size
        loss_scale = float(np.sum(np.abs(diff) * (np.abs(diff) + 2 * m_out)) / diff.size)

    # Backward in center/radius form; the scale follows the same sums on absolute values.
    center, radius, scale = [None] * len(params), [None] * len(params), [None] * len(params)
    dc, dr, ds = delta, np.zeros_like(delta), delta_scale
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
        center[i] = (zc.T @ a_prev, zc.sum(axis=0))
        radius[i] = (zr.T @ np.abs(a_prev), zr.sum(axis=0))
        scale[i] = (zs_.T @ m_prev, np.abs(zs_).sum(axis=0))
        dc, dr, ds = zc @ W, zr @ np.abs(W), zs_ @ np.abs(W)
    return Expected(loss, loss_scale, center, radius, scale, dc, dr, ds, n_kinks)


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

    return complex_step(along, 0.0)
