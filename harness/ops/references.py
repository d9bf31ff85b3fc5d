"""float64 reference forwards written plainly and apart from the NumPy provider, for the
operators where the provider is clever (im2col, strided window views, fused statistics)
and a plain formulation is cheap: a loop over the kernel's taps instead of a window view,
einsum instead of a reshaped product, the textbook statistics. Every provider's forward is
compared with these, and the oracle differentiates them (complex inputs stay complex: a
complex-step oracle passes them). The rest of the catalogue's references are the NumPy
provider's forwards: one-line formulas (relu, tanh, sum...) with nothing to write twice.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import widened


def linear(x, W, b):
    x, W, b = widened((x, W, b))
    return np.einsum("...i,oi->...o", x, W) + b  # y_o = sum_i x_i W_oi + b_o


def matmul(a, b):
    a, b = widened((a, b))
    return np.einsum("...nk,km->...nm", a, b)


def embedding(indices, W):
    (W,) = widened((W,))
    return np.take(W, np.asarray(indices), axis=0)


def _padded(x, padding, spatial, value=0.0):
    return np.pad(x, ((0, 0), (0, 0)) + ((padding, padding),) * spatial, constant_values=value)


def conv1d(x, w, b, stride=1, padding=0, dilation=1):
    """y[n, o, i] = b[o] + sum_{c, t} x_padded[n, c, i stride + t dilation] w[o, c, t]: one term per tap t."""
    x, w, b = widened((x, w, b))
    xp = _padded(x, padding, 1)
    k = w.shape[-1]
    n_out = (xp.shape[-1] - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((x.shape[0], w.shape[0], n_out), dtype=np.result_type(x, w))
    for t in range(k):
        start = t * dilation
        taps = xp[:, :, start:start + stride * (n_out - 1) + 1:stride]  # (N, C, L_out)
        y += np.einsum("ncl,oc->nol", taps, w[:, :, t])
    return y + b[:, None]


def conv2d(x, w, b, stride=1, padding=0, dilation=1):
    """The same, with taps (s, t) over a 2-d kernel."""
    x, w, b = widened((x, w, b))
    xp = _padded(x, padding, 2)
    kh, kw = w.shape[-2:]
    oh = (xp.shape[2] - dilation * (kh - 1) - 1) // stride + 1
    ow = (xp.shape[3] - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((x.shape[0], w.shape[0], oh, ow), dtype=np.result_type(x, w))
    for s in range(kh):
        for t in range(kw):
            r, c = s * dilation, t * dilation
            taps = xp[:, :, r:r + stride * (oh - 1) + 1:stride, c:c + stride * (ow - 1) + 1:stride]
            y += np.einsum("nchw,oc->nohw", taps, w[:, :, s, t])
    return y + b[:, None, None]


def _pool_taps(xp, kernel, stride):
    """Each tap of the kernel as an (N, C, OH, OW) slice of the padded input."""
    oh = (xp.shape[2] - kernel) // stride + 1
    ow = (xp.shape[3] - kernel) // stride + 1
    return [xp[:, :, s:s + stride * (oh - 1) + 1:stride, t:t + stride * (ow - 1) + 1:stride]
            for s in range(kernel) for t in range(kernel)]


def max_pool2d(x, kernel=2, stride=2, padding=0):
    (x,) = widened((x,))
    taps = _pool_taps(_padded(x, padding, 2, -np.inf), kernel, stride)
    out = taps[0]
    for tap in taps[1:]:
        out = np.where(tap > out, tap, out)  # the running maximum (ties keep the earlier tap: same value)
    return out


def avg_pool2d(x, kernel=2, stride=2, padding=0, count_include_pad=True):
    (x,) = widened((x,))
    total = sum(_pool_taps(_padded(x, padding, 2), kernel, stride))
    if count_include_pad:
        return total / (kernel * kernel)
    return total / sum(_pool_taps(_padded(np.ones(x.shape), padding, 2), kernel, stride))  # real elements only


def mse(y, target):
    y, target = widened((y, target))
    d = (y - target).ravel()
    return np.asarray(d @ d / d.size)


def cross_entropy(logits, labels, ignore_index=-100, label_smoothing=0.0):
    """-(1 - eps) log p[label] - eps/C sum_c log p[c], averaged over the rows whose label is
    not ignore_index; log p = z - max z - log sum exp(z - max z), row by row."""
    (z,) = widened((logits,))
    labels = np.asarray(labels)
    n_classes = z.shape[-1]
    terms = []
    for row, label in zip(z, labels):
        if label == ignore_index:
            continue
        shifted = row - row.real.max()
        logp = shifted - np.log(np.exp(shifted).sum())
        terms.append(-(1 - label_smoothing) * logp[label] - label_smoothing / n_classes * logp.sum())
    return np.asarray(sum(terms) / len(terms))


def layer_norm(x, gamma, beta, eps=1e-5):
    """(x - mean) / sqrt(var + eps) gamma + beta over the last axis, var = mean((x - mean)^2)."""
    x, gamma, beta = widened((x, gamma, beta))
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def batch_norm(x, gamma, beta, eps=1e-5):
    """The same per channel (axis 1), statistics over every other axis (training mode)."""
    x, gamma, beta = widened((x, gamma, beta))
    moved = np.moveaxis(x, 1, -1)  # channels last: then it is layer_norm's formula over the batch
    flat = moved.reshape(-1, moved.shape[-1])
    mean = flat.mean(axis=0)
    var = ((flat - mean) ** 2).mean(axis=0)
    return np.moveaxis((moved - mean) / np.sqrt(var + eps) * gamma + beta, -1, 1)


def attention(q, k, v, causal=True, scale=None):
    """softmax(q k^T * scale + mask) v, row by row, the mask -inf above the diagonal."""
    q, k, v = widened((q, k, v))
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.einsum("...qd,...kd->...qk", q, k) * scale
    if causal:
        tq, tk = scores.shape[-2:]
        scores = np.where(np.arange(tk)[None, :] > np.arange(tq)[:, None], -np.inf, scores)
    e = np.exp(scores - scores.real.max(axis=-1, keepdims=True))
    return np.einsum("...qk,...kd->...qd", e / e.sum(axis=-1, keepdims=True), v)


REFERENCES = {f.__name__: f for f in (linear, matmul, embedding, conv1d, conv2d, max_pool2d, avg_pool2d, mse,
                                      cross_entropy, layer_norm, batch_norm, attention)}
