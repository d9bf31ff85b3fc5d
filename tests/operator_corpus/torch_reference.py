"""float64 torch equivalents of the corpus operators, and of the conventions the correct
variants pick at kinks and ties, for proving the corpus against torch autograd before
any engine exists. torch is imported inside functions (core envs have no torch).

``TORCH[cls](*tensors, **params)`` computes what ``cls().forward`` does; torch's own
conventions match the correct operators' (relu'(0) = 0, first max in max_pool2d, amax
splitting ties...), and each convention variant has the torch expression whose autograd
makes the same choice.
"""

from __future__ import annotations

import numpy as np

from tests.operator_corpus import activations as act
from tests.operator_corpus import attention as att
from tests.operator_corpus import convolution as conv
from tests.operator_corpus import dense
from tests.operator_corpus import losses as loss
from tests.operator_corpus import normalization as norm
from tests.operator_corpus import pooling as pool
from tests.operator_corpus import shape_ops as shp
from tests.operator_corpus import softmax as sm
from tests.operator_corpus.shape_ops import axes_of


def _functions():
    import torch
    import torch.nn.functional as F

    def dims(x, axis):
        return axes_of(axis, x.ndim)

    def max_pool_unfolded(x, kernel, stride, padding, pick):
        """max over unfolded windows, ``pick`` choosing among ties (split / first / last)."""
        n, c, h, w = x.shape
        xp = F.pad(x, (padding,) * 4, value=-torch.inf)
        cols = F.unfold(xp.reshape(n * c, 1, h + 2 * padding, w + 2 * padding), kernel, stride=stride)
        out = pick(cols)  # (n*c, L)
        oh = (h + 2 * padding - kernel) // stride + 1
        return out.reshape(n, c, oh, -1)

    def last_max(cols):
        return torch.sort(cols, dim=1, stable=True).values[:, -1]

    def reduce_flat(x, axis, pick):
        """``pick`` applied to the reduced axes flattened into one last axis."""
        axes = dims(x, axis)
        moved = torch.movedim(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
        return pick(moved.flatten(start_dim=x.ndim - len(axes)))

    def cross_entropy(logits, labels, ignore_index=-100, label_smoothing=0.0):
        return F.cross_entropy(logits, labels, ignore_index=ignore_index, label_smoothing=label_smoothing)

    def attention(q, k, v, causal=True, scale=None):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    def half_mse(y, t):
        return 0.5 * F.mse_loss(y, t)

    return {
        dense.Linear: lambda x, W, b: F.linear(x, W, b),
        dense.Matmul: torch.matmul,
        dense.Embedding: lambda idx, W: F.embedding(idx, W),
        conv.Conv1d: lambda x, w, b, stride=1, padding=0, dilation=1: F.conv1d(x, w, b, stride, padding, dilation),
        conv.Conv2d: lambda x, w, b, stride=1, padding=0, dilation=1: F.conv2d(x, w, b, stride, padding, dilation),
        pool.MaxPool2d: lambda x, kernel=2, stride=2, padding=0: F.max_pool2d(x, kernel, stride, padding),
        pool.AvgPool2d: lambda x, kernel=2, stride=2, padding=0, count_include_pad=True: F.avg_pool2d(
            x, kernel, stride, padding, count_include_pad=count_include_pad),
        sm.Softmax: lambda x, axis=-1: torch.softmax(x, axis),
        sm.LogSoftmax: lambda x, axis=-1: torch.log_softmax(x, axis),
        sm.LogSumExp: lambda x, axis=-1: torch.logsumexp(x, axis),
        norm.LayerNorm: lambda x, g, b, eps=1e-5: F.layer_norm(x, x.shape[-1:], g, b, eps),
        norm.BatchNorm: lambda x, g, b, eps=1e-5: F.batch_norm(x, None, None, g, b, training=True, eps=eps),
        loss.Mse: F.mse_loss,
        loss.CrossEntropy: cross_entropy,
        att.Attention: attention,
        act.Relu: torch.relu,
        act.LeakyRelu: lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
        act.Abs: torch.abs,
        act.Gelu: F.gelu,
        act.Silu: F.silu,
        act.Sigmoid: torch.sigmoid,
        act.Tanh: torch.tanh,
        shp.Sum: lambda x, axis=None: torch.sum(x, dims(x, axis)),
        shp.Mean: lambda x, axis=None: torch.mean(x, dims(x, axis)),
        shp.Amax: lambda x, axis=None: torch.amax(x, dims(x, axis)),
        shp.Permute: lambda x, perm=None: x.permute(*perm),
        shp.Concatenate: lambda a, b, c, axis=0: torch.cat([a, b, c], axis),
        # the conventions of the correct variants, as torch expressions that make the same choice
        act.ReluOneAtZero: lambda x: torch.clamp(x, min=0),
        act.ReluHalfAtZero: lambda x: torch.maximum(x, torch.zeros_like(x)),
        act.LeakyReluOneAtZero: lambda x, negative_slope=0.01: torch.where(x >= 0, x, negative_slope * x),
        act.AbsOneAtZero: lambda x: torch.where(x >= 0, x, -x),
        act.GeluTanh: lambda x: F.gelu(x, approximate="tanh"),
        pool.MaxPool2dSplitTies: lambda x, kernel=2, stride=2, padding=0: max_pool_unfolded(
            x, kernel, stride, padding, lambda cols: cols.amax(dim=1)),
        pool.MaxPool2dLastTie: lambda x, kernel=2, stride=2, padding=0: max_pool_unfolded(
            x, kernel, stride, padding, last_max),
        shp.AmaxFirstTie: lambda x, axis=None: reduce_flat(x, axis, lambda t: t.max(dim=-1).values),
        shp.AmaxLastTie: lambda x, axis=None: reduce_flat(
            x, axis, lambda t: torch.sort(t, dim=-1, stable=True).values[..., -1]),
        loss.HalfMse: half_mse,
    }


_CACHE: dict = {}


def torch_function(cls):
    """The torch expression for ``cls``: its own, or that of the nearest class that has one."""
    if not _CACHE:
        _CACHE.update(_functions())
    for klass in cls.__mro__:
        if klass in _CACHE:
            return _CACHE[klass]
    raise KeyError(f"no torch equivalent for {cls.__name__}")


def as_tensors(xs, dtype=None):
    import torch

    out = []
    for x in xs:
        if np.issubdtype(np.asarray(x).dtype, np.integer):
            out.append(torch.as_tensor(np.asarray(x)))
        else:
            out.append(torch.tensor(np.asarray(x, dtype=dtype or np.asarray(x).dtype), requires_grad=True))
    return out


def torch_forward_and_vjp(cls, xs, params, cotangent, dtype="float64"):
    """torch's forward and VJP (``None`` for integer inputs) of ``cls`` at ``xs`` in ``dtype``."""
    import torch

    tensors = as_tensors(xs, dtype)
    out = torch_function(cls)(*tensors, **params)
    floats = [t for t in tensors if t.is_floating_point()]
    grads = iter(torch.autograd.grad(out, floats, torch.as_tensor(np.asarray(cotangent, dtype=dtype)),
                                     allow_unused=True))
    vjp = []
    for t in tensors:
        if t.is_floating_point():
            g = next(grads)
            vjp.append(np.zeros(tuple(t.shape), dtype=dtype) if g is None else g.numpy())
        else:
            vjp.append(None)
    return out.detach().numpy(), vjp


def torch_jvp(cls, xs, params, tangents):
    """torch's forward-mode JVP of ``cls`` at ``xs`` along ``tangents`` (integer inputs held fixed)."""
    import torch

    tensors = [torch.as_tensor(np.asarray(x)) for x in xs]
    float_at = [i for i, t in enumerate(tensors) if t.is_floating_point()]

    def f(*floats):
        full = list(tensors)
        for i, t in zip(float_at, floats):
            full[i] = t
        return torch_function(cls)(*full, **params)

    _, out = torch.func.jvp(f, tuple(tensors[i] for i in float_at),
                            tuple(torch.as_tensor(np.asarray(tangents[i])) for i in float_at))
    return out.numpy()
