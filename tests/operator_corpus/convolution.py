"""conv1d and conv2d (cross-correlation, as torch) with stride, zero padding and dilation,
written the two ways people write them, each with the mistakes that way invites:

- conv1d by im2col: gather the windows with an index array, contract, and scatter the
  window gradients back with ``np.add.at`` (col2im).
- conv2d by the textbook derivation: the input gradient is a *full* convolution of the
  stride-dilated output gradient with the kernel rotated 180 degrees, cropped by the
  padding; the weight gradient correlates the padded input with the output gradient.

Samples: stride < kernel (overlapping windows), stride > 1, padding, dilation > 1,
non-square inputs and kernels, random (non-symmetric) kernels, batch 1, one channel.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_convolution.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_convolution import Conv1d, Conv2d, conv_params

# --- bugs ------------------------------------------------------------------------------------


class Conv1dBufferedCol2im(Conv1d):
    """conv1d col2im dx[..., index] += cols: buffered fancy indexing, overlapping windows count once."""

    source = "https://github.com/FluxML/Flux.jl/issues/1197 (family); numpy's np.add.at docs"

    def input_gradient(self, g, x, w, stride, padding, dilation):
        index = self.window_index(x.shape[-1], w.shape[-1], stride, padding, dilation)
        dxp = np.zeros(x.shape[:2] + (x.shape[-1] + 2 * padding,), dtype=x.dtype)
        dxp[:, :, index] += np.einsum("noi,ock->ncik", g, w)
        return dxp[:, :, padding:padding + x.shape[-1]]


class Conv1dWeightGradIgnoresDilation(Conv1d):
    """conv1d weight gradient gathers its windows without the dilation (taps at i+k, not i+k*d)."""

    source = "https://github.com/pytorch/pytorch/issues/15501"

    def weight_gradient(self, g, x, w, stride, padding, dilation):
        cols = self.columns(x, w.shape[-1], stride, padding, 1)[:, :, :g.shape[-1]]
        return np.einsum("noi,ncik->ock", g, cols)


class Conv2dKernelNotRotated(Conv2d):
    """conv2d input gradient correlates with the kernel as is: the 180-degree rotation forgotten."""

    source = "https://end-to-end-machine-learning.teachable.com (cnn-2d lectures); the memo's #7"

    def rotated_kernel(self, w):
        return w.transpose(1, 0, 2, 3)


class Conv2dRot90ChannelAxes(Conv2d):
    """conv2d rotates the kernel with np.rot90(w, 2), which turns axes (0, 1): the channel axes."""

    source = "numpy.rot90 rotates the first two axes unless axes= is given"

    def rotated_kernel(self, w):
        return np.rot90(w, 2).transpose(1, 0, 2, 3)


class Conv2dStrideNotSpread(Conv2d):
    """conv2d with stride > 1: dY used as is, no zeros inserted, so dX takes dY[i] for dY[i*s]."""

    source = "https://github.com/pytorch/pytorch/issues/63314"

    def spread(self, g, stride):
        return g


class Conv2dInputGradIgnoresDilation(Conv2d):
    """conv2d input gradient taps the rotated kernel at k, not k * dilation."""

    source = "https://github.com/pytorch/pytorch/issues/15501"

    def input_gradient(self, g, x, w, stride, padding, dilation):
        return super().input_gradient(g, x, w, stride, padding, 1)


class Conv2dCropFromCorner(Conv2d):
    """conv2d input gradient cropped from the corner ([:H, :W]) instead of [p:p+H, p:p+W]."""

    source = "the memo's #11 (full-convolution padding k-1-p)"

    def crop(self, dxp, x, padding):
        return dxp[:, :, :x.shape[2], :x.shape[3]]


class Conv2dWeightGradReversed(Conv2d):
    """conv2d weight gradient correlates dY with x instead of x with dY: the kernel comes out reversed."""

    source = "https://end-to-end-machine-learning.teachable.com (cnn-2d lectures); the memo's #7"

    def weight_gradient(self, g, x, w, stride, padding, dilation):
        return np.flip(super().weight_gradient(g, x, w, stride, padding, dilation), axis=(2, 3))


class Conv2dJvpWeightTangentDropped(Conv2d):
    """conv2d's forward-mode rule conv(dx, w) + db: the weight's tangent term conv(x, dw) is missing."""

    source = "the memo's 'a missing term' hint; a product rule with one term"

    def jvp(self, inputs, tangents, stride=1, padding=0, dilation=1):
        _, w, _ = inputs
        dx, _, db = tangents
        return (self.forward(dx, w, db, **conv_params(stride, padding, dilation)),)
