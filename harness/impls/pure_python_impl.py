"""Backprop in pure Python: matrices are lists of rows, numbers are floats.

The MLP is a chain (``harness.ops.chain.mlp``) of the pure-Python provider's list
operators (``harness.ops.pure_python_ops``): the forward keeps what flowed into each
node, the backward applies each operator's VJP in reverse. No NumPy runs inside the step.
"""

from __future__ import annotations

from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.ops.chain import mlp_chain
from harness.ops.pure_python_ops import LIST_OPERATORS


class PurePythonImplementation(Implementation):
    name = "pure-python"
    description = "lists of floats, no NumPy inside the step"
    # A step runs ~2-3 M multiply-adds a second: the seed's network at batch 64 takes
    # seconds, and selections made on the user's behalf leave such cases out.
    capabilities = Capabilities(dtypes={"float64"}, input_grad=True, max_multiply_adds=1_000_000)

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return PurePythonPrepared(spec, params, input_grad)


class PurePythonPrepared(Prepared):
    def __init__(self, spec, params, input_grad=False):
        self.spec, self.input_grad = spec, input_grad
        self.chain = mlp_chain(spec, LIST_OPERATORS)
        self.plan = self.chain.plans[input_grad]  # the step's per-node decisions, made once
        self.set_params(params)

    def set_params(self, params):
        self.params = [(W.tolist(), b.tolist()) for W, b in params]

    def batch(self, x, y):
        return x.tolist(), y.tolist()

    def to_numpy(self, result):
        import numpy as np

        loss, grads, dx = result
        dx = None if dx is None else np.array(dx)
        return super().to_numpy((loss, [(np.array(dW), np.array(db)) for dW, db in grads], dx))

    def forward(self, batch):
        x, y = batch
        return self.chain.forward(self.params, x, y, keep=False).loss

    def step(self, batch):
        x, y = batch
        return self.plan.step(self.params, x, y)
