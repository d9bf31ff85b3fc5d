"""The PyTorch autograd provider: every operator of the catalogue as a torch expression,
its backward autograd's (and its JVP ``torch.func.jvp``'s). Each becomes a mapping through
the torch adapter (``harness.mappings.torch_mapping``), which moves arrays in and out of
torch around the call. torch is imported inside the functions: core environments have
none, and this module still imports there (the provider then says it is unavailable).

Parameters keep the NumPy provider's names (``axis``, ``kernel``, ``perm``...), so one
record's samples drive both.
"""

from __future__ import annotations


def _axes(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(a % x.ndim for a in (axis if isinstance(axis, (list, tuple)) else (axis,)))


def _functions() -> dict:
    import torch
    import torch.nn.functional as F

    def linear(x, W, b):
        return F.linear(x, W, b)

    def embedding(indices, W):
        return F.embedding(indices, W)

    def conv1d(x, w, b, stride=1, padding=0, dilation=1):
        return F.conv1d(x, w, b, stride, padding, dilation)

    def conv2d(x, w, b, stride=1, padding=0, dilation=1):
        return F.conv2d(x, w, b, stride, padding, dilation)

    def max_pool2d(x, kernel=2, stride=2, padding=0):
        return F.max_pool2d(x, kernel, stride, padding)

    def avg_pool2d(x, kernel=2, stride=2, padding=0, count_include_pad=True):
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=count_include_pad)

    def cross_entropy(logits, labels, ignore_index=-100, label_smoothing=0.0):
        return F.cross_entropy(logits, labels, ignore_index=ignore_index, label_smoothing=label_smoothing)

    def layer_norm(x, gamma, beta, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], gamma, beta, eps)

    def batch_norm(x, gamma, beta, eps=1e-5):
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)

    def attention(q, k, v, causal=True, scale=None):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    return {
        "linear": linear,
        "matmul": torch.matmul,
        "embedding": embedding,
        "conv1d": conv1d,
        "conv2d": conv2d,
        "max_pool2d": max_pool2d,
        "avg_pool2d": avg_pool2d,
        "softmax": lambda x, axis=-1: torch.softmax(x, axis),
        "log_softmax": lambda x, axis=-1: torch.log_softmax(x, axis),
        "logsumexp": lambda x, axis=-1: torch.logsumexp(x, axis),
        "cross_entropy": cross_entropy,
        "mse": F.mse_loss,
        "layer_norm": layer_norm,
        "batch_norm": batch_norm,
        "attention": attention,
        "relu": torch.relu,
        "leaky_relu": lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
        "gelu": F.gelu,
        "silu": F.silu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "abs": torch.abs,
        "identity": lambda x: x.clone(),
        "sum": lambda x, axis=None: torch.sum(x, _axes(x, axis)),
        "mean": lambda x, axis=None: torch.mean(x, _axes(x, axis)),
        "max": lambda x, axis=None: torch.amax(x, _axes(x, axis)),  # tied maxima share the gradient
        "reshape": lambda x, shape=(-1,): torch.reshape(x, tuple(shape)),
        "transpose": lambda x, perm=None: x.permute(*(perm if perm is not None else reversed(range(x.ndim)))),
        "concatenate": lambda a, b, c, axis=0: torch.cat([a, b, c], axis),
    }


_FUNCTIONS: dict = {}


def torch_function(name: str):
    """The torch expression of operator ``name`` (tensors in, tensor out)."""
    if not _FUNCTIONS:
        _FUNCTIONS.update(_functions())
    return _FUNCTIONS[name]


def _factory(name: str):
    def build():
        from harness.mappings.torch_mapping import torch_mapping
        from harness.ops.catalog import RECORDS

        record = RECORDS[name]
        return torch_mapping(torch_function(name), inputs=record.inputs, params=record.params, name=name)

    build.__name__ = f"torch_{name}"
    return build


OPERATOR_NAMES = ("linear", "matmul", "embedding", "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "softmax",
                  "log_softmax", "logsumexp", "cross_entropy", "mse", "layer_norm", "batch_norm", "attention", "relu",
                  "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "abs", "identity", "sum", "mean", "max", "reshape",
                  "transpose", "concatenate")
TORCH_OPERATORS = {name: _factory(name) for name in OPERATOR_NAMES}
