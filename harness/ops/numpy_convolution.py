"""conv1d and conv2d (cross-correlation, as torch) with stride, zero padding and dilation,
written the two ways people write them (the mistakes each invites are in
tests/operator_corpus/convolution.py):

- conv1d by im2col: gather the windows with an index array, contract, and scatter the
  window gradients back with ``np.add.at`` (col2im).
- conv2d by the textbook derivation: the input gradient is a *full* convolution of the
  stride-dilated output gradient with the kernel rotated 180 degrees, cropped by the
  padding; the weight gradient correlates the padded input with the output gradient.

Samples: stride < kernel (overlapping windows), stride > 1, padding, dilation > 1,
non-square inputs and kernels, random (non-symmetric) kernels, batch 1, one channel.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.ops.numpy_operator import In, Operator, normal, single


def conv_params(stride=1, padding=0, dilation=1):
    return {"stride": stride, "padding": padding, "dilation": dilation}


class Convolution(Operator):
    """What conv1d and conv2d share: bilinear in (x, w), so the JVP is two forwards."""

    def jvp(self, inputs, tangents, stride=1, padding=0, dilation=1):
        x, w, b = inputs
        dx, dw, db = tangents
        p = conv_params(stride, padding, dilation)
        return (self.forward(dx, w, db, **p) + self.forward(x, dw, np.zeros_like(b), **p),)


class Conv1d(Convolution, correct=True):
    """conv1d: x (N, C, L), w (O, C, K), b (O,); im2col forward, col2im (np.add.at) backward."""

    name = "conv1d"
    inputs = (In((2, 2, 7)), In((3, 2, 3)), In((3,)))
    params = conv_params(stride=2, padding=1)

    @staticmethod
    def window_index(length, k, stride, padding, dilation):
        """Padded position of tap t of window i: i * stride + t * dilation, shape (L_out, K)."""
        n_out = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        return np.arange(n_out)[:, None] * stride + np.arange(k)[None, :] * dilation

    def columns(self, x, k, stride, padding, dilation):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
        return xp[:, :, self.window_index(x.shape[-1], k, stride, padding, dilation)]  # (N, C, L_out, K)

    def forward(self, x, w, b, stride=1, padding=0, dilation=1):
        cols = self.columns(x, w.shape[-1], stride, padding, dilation)
        return np.einsum("ncik,ock->noi", cols, w) + b[:, None]

    def input_gradient(self, g, x, w, stride, padding, dilation):
        index = self.window_index(x.shape[-1], w.shape[-1], stride, padding, dilation)
        dxp = np.zeros(x.shape[:2] + (x.shape[-1] + 2 * padding,), dtype=x.dtype)
        np.add.at(dxp, (slice(None), slice(None), index), np.einsum("noi,ock->ncik", g, w))
        return dxp[:, :, padding:padding + x.shape[-1]]

    def weight_gradient(self, g, x, w, stride, padding, dilation):
        return np.einsum("noi,ncik->ock", g, self.columns(x, w.shape[-1], stride, padding, dilation))

    def vjp(self, inputs, cotangents, stride=1, padding=0, dilation=1):
        x, w, _ = inputs
        g = single(cotangents)
        return (self.input_gradient(g, x, w, stride, padding, dilation),
                self.weight_gradient(g, x, w, stride, padding, dilation), g.sum(axis=(0, 2)))

    def samples(self, rng, dtype):
        def case(n, c, length, o, k, label, **params):
            xwb = (normal(rng, (n, c, length), dtype), normal(rng, (o, c, k), dtype), normal(rng, (o,), dtype))
            return xwb, conv_params(**params), label

        return [
            case(2, 2, 7, 3, 3, "stride 1 < kernel 3: overlapping windows"),
            case(2, 2, 8, 3, 3, "stride 2, padding 1", stride=2, padding=1),
            case(1, 2, 9, 2, 3, "dilation 2, padding 2", dilation=2, padding=2),
            case(1, 1, 5, 1, 1, "kernel 1, one channel, batch 1"),
            case(2, 3, 10, 2, 4, "stride 3, dilation 2, padding 1", stride=3, dilation=2, padding=1),
        ]


def correlate2d(xp, w, stride, dilation):
    """Cross-correlation of an already padded (N, C, H, W) with w (O, C, KH, KW)."""
    kh, kw = w.shape[-2:]
    windows = sliding_window_view(xp, ((kh - 1) * dilation + 1, (kw - 1) * dilation + 1), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride, ::dilation, ::dilation]  # (N, C, OH, OW, KH, KW)
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


class Conv2d(Convolution, correct=True):
    """conv2d: x (N, C, H, W), w (O, C, KH, KW), b (O,); input gradient by full convolution."""

    name = "conv2d"
    inputs = (In((1, 2, 5, 6)), In((3, 2, 3, 2)), In((3,)))
    params = conv_params(stride=2, padding=1)

    def forward(self, x, w, b, stride=1, padding=0, dilation=1):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        return correlate2d(xp, w, stride, dilation) + b[:, None, None]

    def rotated_kernel(self, w):
        """w rotated 180 degrees in its spatial axes, in/out channels exchanged: (C, O, KH, KW)."""
        return np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3)

    def spread(self, g, stride):
        """g with stride - 1 zeros inserted between neighbours: where each output was taken."""
        n, o, oh, ow = g.shape
        out = np.zeros((n, o, (oh - 1) * stride + 1, (ow - 1) * stride + 1), dtype=g.dtype)
        out[:, :, ::stride, ::stride] = g
        return out

    def crop(self, dxp, x, padding):
        return dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]

    def input_gradient(self, g, x, w, stride, padding, dilation):
        gs = self.spread(g, stride)
        full = [(k - 1) * dilation for k in w.shape[2:]]
        # rows/columns of the padded input no window reached get zeros at the end
        rest = [x.shape[2 + i] + 2 * padding - gs.shape[2 + i] - full[i] for i in range(2)]
        gp = np.pad(gs, ((0, 0), (0, 0), (full[0], full[0] + rest[0]), (full[1], full[1] + rest[1])))
        return self.crop(correlate2d(gp, self.rotated_kernel(w), 1, dilation), x, padding)

    def weight_gradient(self, g, x, w, stride, padding, dilation):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        kh, kw = w.shape[-2:]
        windows = sliding_window_view(xp, ((kh - 1) * dilation + 1, (kw - 1) * dilation + 1), axis=(2, 3))
        windows = windows[:, :, ::stride, ::stride, ::dilation, ::dilation]
        return np.tensordot(g, windows, axes=([0, 2, 3], [0, 2, 3]))  # (O, C, KH, KW)

    def vjp(self, inputs, cotangents, stride=1, padding=0, dilation=1):
        x, w, _ = inputs
        g = single(cotangents)
        return (self.input_gradient(g, x, w, stride, padding, dilation),
                self.weight_gradient(g, x, w, stride, padding, dilation), g.sum(axis=(0, 2, 3)))

    def samples(self, rng, dtype):
        def case(n, c, hw, o, k, label, **params):
            xwb = (normal(rng, (n, c) + hw, dtype), normal(rng, (o, c) + k, dtype), normal(rng, (o,), dtype))
            return xwb, conv_params(**params), label

        return [
            case(2, 2, (5, 6), 3, (3, 2), "stride 1, non-square input and kernel"),
            case(1, 2, (6, 7), 2, (3, 3), "stride 2, padding 1", stride=2, padding=1),
            case(1, 2, (7, 6), 2, (2, 3), "dilation 2, padding 2", dilation=2, padding=2),
            case(2, 1, (7, 7), 2, (3, 3), "stride 2, dilation 2, padding 1 (rows left over)",
                 stride=2, dilation=2, padding=1),
            case(1, 1, (1, 4), 1, (1, 2), "height 1, one channel, batch 1"),
        ]
