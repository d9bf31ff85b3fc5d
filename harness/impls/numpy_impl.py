"""Hand-written, vectorised forward and backward in NumPy: the MLP as a chain of the
NumPy provider's operators (``harness.ops``), each operator's VJP written once."""

from __future__ import annotations

import numpy as np

from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.ops.catalog import NUMPY_OPERATORS
from harness.ops.chain import mlp_chain


class NumpyImplementation(Implementation):
    name = "numpy"
    description = "hand-written vectorised NumPy forward and backward"
    capabilities = Capabilities(dtypes={"float32", "float64"}, input_grad=True)

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return NumpyPrepared(spec, params, dtype, input_grad)


class NumpyPrepared(Prepared):
    def __init__(self, spec, params, dtype, input_grad=False):
        self.spec, self.dtype, self.input_grad = spec, np.dtype(dtype), input_grad
        self.chain = mlp_chain(spec, NUMPY_OPERATORS)
        self.set_params(params)

    def set_params(self, params):
        # Our own contiguous copies: the step never aliases the caller's arrays. A
        # training loop calls this every step, so same-shaped arrays are copied into.
        old = getattr(self, "params", None)
        if old and [(W.shape, b.shape) for W, b in old] == [(np.shape(W), np.shape(b)) for W, b in params]:
            for (W_own, b_own), (W, b) in zip(old, params):
                np.copyto(W_own, W, casting="same_kind")
                np.copyto(b_own, b, casting="same_kind")
            return
        self.params = [(np.array(W, self.dtype, order="C"), np.array(b, self.dtype)) for W, b in params]

    def batch(self, x, y):
        x = np.ascontiguousarray(x, self.dtype)
        y = np.asarray(y, np.intp) if self.spec.loss == "cross_entropy" else np.ascontiguousarray(y, self.dtype)
        return x, y

    def forward(self, batch):
        x, y = batch
        return self.chain.forward(self.params, x, y, keep=False).loss

    def step(self, batch):
        # The MLP as a chain of the NumPy provider's operators (harness.ops): the forward
        # keeps what flowed into each node, the backward is each operator's VJP in reverse.
        x, y = batch
        return self.chain.step(self.params, x, y, input_grad=self.input_grad)
