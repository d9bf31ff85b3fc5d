"""``torch.compile`` of the step: CUDA where present, CPU otherwise.

The forward is compiled with ``dynamic=False``; AOTAutograd compiles the matching
backward, so ``loss.backward()`` runs compiled code too. One compiled function is
kept per (spec, dtype, device, batch shape): compiling happens when a batch of a new
shape is first converted (``Prepared.batch``), never inside ``step``, and each key
has its own function so dynamo's recompile limit is never reached.
"""

from __future__ import annotations

import types

from harness.registry import Capabilities, Implementation
from impls.torch_impl import TorchPrepared, forward_loss, pick_device, torch_unavailable_reason

_COMPILED: dict = {}


def compiled_forward_loss(spec, dtype, device, x_shape, y_shape, input_grad=False):
    import torch

    # input_grad changes x.requires_grad, and with it the compiled backward
    key = (spec, str(dtype), str(device), tuple(x_shape), tuple(y_shape), bool(input_grad))
    if key not in _COMPILED:
        # CUDA graphs cut the launch overhead that dominates small steps on a GPU.
        mode = "reduce-overhead" if torch.device(device).type == "cuda" else None
        _COMPILED[key] = torch.compile(_fresh_copy(spec), dynamic=False, fullgraph=True, mode=mode)
    return _COMPILED[key]


def _entry(params, x, y):
    return forward_loss(_SPEC, params, x, y)  # noqa: F821 (_SPEC lives in each copy's globals)


def _fresh_copy(spec):
    # Dynamo keeps its cache, and its limit of 8 recompiles, on the code object, so a
    # function per key needs a code object of its own, or the ninth key would fail.
    code = _entry.__code__.replace(co_name=f"forward_loss_{len(_COMPILED)}")
    return types.FunctionType(code, {**_entry.__globals__, "_SPEC": spec}, code.co_name)


class TorchCompileImplementation(Implementation):
    name = "torch-compile"
    description = "torch.compile of the forward, compiled backward via AOTAutograd"
    capabilities = Capabilities(dtypes={"float32", "float64"}, devices=("cuda", "cpu"), input_grad=True)
    # Each new batch shape compiles for seconds: the conformance strategies keep to a
    # few fixed shapes for such implementations (harness.strategies.COMPILED_SHAPES).
    compiles_per_shape = True

    def default_device(self):
        return "cuda" if torch_unavailable_reason("cuda") is None else "cpu"

    def unavailable_reason(self, device=None):
        return torch_unavailable_reason(device or self.default_device())

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return TorchCompilePrepared(spec, params, dtype, pick_device(device))


class TorchCompilePrepared(TorchPrepared):
    def batch(self, x, y):
        batch = super().batch(x, y)
        known = len(_COMPILED)
        self._compiled = compiled_forward_loss(
            self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad
        )
        if len(_COMPILED) > known:
            # A new shape: compile (and warm up) both graphs now, outside any timing.
            self.to_numpy(self.step(batch))
            self.forward(batch)
        return batch

    def step(self, batch):
        x, y = batch
        x = x.detach().requires_grad_(self.input_grad)
        for p in self.flat:
            p.grad = None
        loss = self._compiled(self.flat, x, y)
        loss.backward()
        return loss.detach().clone(), [p.grad for p in self.flat], x.grad

    def forward(self, batch):
        with self.torch.no_grad():
            return self._compiled(self.flat, *batch).clone()
