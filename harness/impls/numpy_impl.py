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
    # step(batch, out=...) writes the gradients into arrays the caller gives: a Python
    # worker passes views of the shared memory its answer goes in, so the gradients are
    # not copied once more to leave the worker (docs/worker-protocol.md, "out=").
    step_accepts_out = True

    def __init__(self, spec, params, dtype, input_grad=False):
        self.spec, self.dtype, self.input_grad = spec, np.dtype(dtype), input_grad
        self.chain = mlp_chain(spec, NUMPY_OPERATORS)
        self.plan = self.chain.plans[input_grad]  # the step's per-node decisions, made once
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

    def step(self, batch, out=None):
        """The MLP as a chain of the NumPy provider's operators (harness.ops): the forward
        keeps what flowed into each node, the backward is each operator's VJP in reverse.
        ``out``: optional ``[(dW, db), ...]``, C-contiguous arrays shaped and typed like
        the parameters; the linear layers write their gradients there (no new arrays)."""
        x, y = batch
        if out is not None:
            out = self._check_out(out)
        return self.plan.step(self.params, x, y, out)

    def _check_out(self, out):
        pairs = [tuple(pair) for pair in out]
        if len(pairs) != len(self.params):
            raise ValueError(f"out: {len(pairs)} (dW, db) pairs, expected {len(self.params)}")
        for i, (mine, theirs) in enumerate(zip(self.params, pairs)):
            for name, p, o in zip(("dW", "db"), mine, theirs):
                if not (isinstance(o, np.ndarray) and o.shape == p.shape and o.dtype == self.dtype
                        and o.flags.c_contiguous and o.flags.writeable):
                    raise ValueError(f"out[{i}] {name}: expected a writable C-contiguous {self.dtype} array of shape "
                                     f"{p.shape}, got {getattr(o, 'dtype', type(o).__name__)} {getattr(o, 'shape', '')}")
        return pairs
