"""The built-in operators: one record each, in the order ``backprop-harness ops`` lists
them. The inputs and hand-made sample cases are those written beside the NumPy operator
(``harness.ops.numpy_*``: ``samples`` and ``inputs`` of each class). The reference is the
plain float64 forward of ``harness.ops.references`` where there is one (dense, convolution,
pooling, losses, normalisation, attention), else the NumPy class's forward in float64.
"""

from __future__ import annotations

from harness.ops import numpy_activations as act
from harness.ops import numpy_attention as att
from harness.ops import numpy_convolution as conv
from harness.ops import numpy_dense as dense
from harness.ops import numpy_losses as loss
from harness.ops import numpy_normalization as norm
from harness.ops import numpy_pooling as pool
from harness.ops import numpy_shape_ops as shp
from harness.ops import numpy_softmax as sm
from harness.ops.records import OpRecord
from harness.ops.references import REFERENCES

# (NumPy class, input names, one-line summary)
_TABLE = (
    (dense.Linear, ("x", "W", "b"), "y = x W^T + b, x (..., in), W (out, in), b (out,)"),
    (dense.Matmul, ("a", "b"), "batched a @ b, b broadcast over the batch"),
    (dense.Embedding, ("indices", "W"), "rows of W picked by integer indices (repeats accumulate)"),
    (conv.Conv1d, ("x", "w", "b"), "1-d cross-correlation with stride, padding, dilation"),
    (conv.Conv2d, ("x", "w", "b"), "2-d cross-correlation with stride, padding, dilation"),
    (pool.MaxPool2d, ("x",), "2-d max pooling (kernel, stride, padding); first maximum at ties"),
    (pool.AvgPool2d, ("x",), "2-d average pooling (kernel, stride, padding, count_include_pad)"),
    (sm.Softmax, ("x",), "softmax along an axis"),
    (sm.LogSoftmax, ("x",), "log softmax along an axis"),
    (sm.LogSumExp, ("x",), "log-sum-exp along an axis"),
    (loss.CrossEntropy, ("logits", "labels"), "softmax + mean negative log-likelihood of integer labels"),
    (loss.Mse, ("y", "target"), "mean squared error over all elements"),
    (norm.LayerNorm, ("x", "gamma", "beta"), "layer normalisation over the last axis"),
    (norm.BatchNorm, ("x", "gamma", "beta"), "batch normalisation with training statistics"),
    (att.Attention, ("q", "k", "v"), "scaled dot-product attention with an optional causal mask"),
    (act.Relu, ("x",), "max(x, 0); relu'(0) = 0"),
    (act.LeakyRelu, ("x",), "x or slope * x; the slope at 0"),
    (act.Gelu, ("x",), "x Phi(x) (the erf form)"),
    (act.Silu, ("x",), "x sigmoid(x)"),
    (act.Sigmoid, ("x",), "1 / (1 + exp(-x))"),
    (act.Tanh, ("x",), "tanh(x)"),
    (act.Abs, ("x",), "|x|; abs'(0) = 0"),
    (act.Identity, ("x",), "y = x"),
    (shp.Sum, ("x",), "sum over axes"),
    (shp.Mean, ("x",), "mean over axes"),
    (shp.Amax, ("x",), "max over axes; tied maxima share the gradient evenly"),
    (shp.Reshape, ("x",), "reshape"),
    (shp.Permute, ("x",), "transpose by a permutation of the axes"),
    (shp.Concatenate, ("a", "b", "c"), "concatenate three arrays along an axis"),
)


def _record(cls, input_names, summary) -> OpRecord:
    operator = cls()
    reference = REFERENCES.get(cls.name, operator.reference)
    return OpRecord(cls.name, summary, reference, tuple(cls.inputs), operator.samples, input_names,
                    dict(cls.params), vjp_terms=getattr(operator, "vjp_terms", None),
                    jvp_terms=getattr(operator, "jvp_terms", None))


RECORDS: dict[str, OpRecord] = {cls.name: _record(cls, names, summary) for cls, names, summary in _TABLE}
NUMPY_OPERATORS = {cls.name: cls for cls, _, _ in _TABLE}
