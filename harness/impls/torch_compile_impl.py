"""``torch.compile`` of the step: CUDA where present, CPU otherwise.

On the CPU the whole training step is one compiled graph: the forward, the loss
and ``torch.autograd.grad`` of the loss with respect to the parameters (and ``x``
when ``input_grad`` is set), traced by dynamo with ``trace_autograd_ops`` on. The
graph returns the loss and the gradients, so a step is a single call into
inductor's code: no autograd graph is recorded and the autograd engine never runs.
Compiling only the forward and calling ``loss.backward()`` ran the same kernels
(the matmuls are ATen's either way) but paid for the AOTAutograd wrapper and the
engine on top, about 0.25 ms a step, which made it slower than eager torch; the
single graph saves that and the eager dispatch of the pointwise ops.

On CUDA the forward is compiled with ``mode="reduce-overhead"`` (CUDA graphs cut
the launch overhead that dominates small steps on a GPU) and AOTAutograd compiles
the matching backward, which ``loss.backward()`` runs.

Graphs are compiled with ``dynamic=False``. The compiled functions are kept per
(spec, dtype, device, batch shape, input_grad): compiling happens when a batch of a
new shape is first converted (``Prepared.batch``), never inside ``step``, and each
key has functions of its own so dynamo's recompile limit is never reached.
"""

from __future__ import annotations

import types

from harness.core.protocol import Capabilities, Implementation
from harness.impls.torch_impl import TorchPrepared, forward_loss, pick_device, torch_unavailable_reason

# key -> (compiled step or None, compiled forward loss)
_COMPILED: dict = {}


def compiled_functions(spec, dtype, device, x_shape, y_shape, input_grad=False):
    """``(step, forward)`` compiled for this key; ``step`` is ``None`` on CUDA."""
    import torch

    # input_grad changes x.requires_grad, and with it what the step differentiates
    key = (spec, str(dtype), str(device), tuple(x_shape), tuple(y_shape), bool(input_grad))
    if key not in _COMPILED:
        n = len(_COMPILED)
        if torch.device(device).type == "cuda":
            forward = torch.compile(_fresh_copy(_forward_entry, f"forward_loss_{n}", spec, input_grad),
                                    dynamic=False, fullgraph=True, mode="reduce-overhead")
            _COMPILED[key] = (None, forward)
        else:
            step = torch.compile(_fresh_copy(_step_entry, f"step_{n}", spec, input_grad), dynamic=False, fullgraph=True)
            forward = torch.compile(_fresh_copy(_forward_entry, f"forward_loss_{n}", spec, input_grad),
                                    dynamic=False, fullgraph=True)
            _COMPILED[key] = (step, forward)
    return _COMPILED[key]


def _forward_entry(params, x, y):
    return forward_loss(_SPEC, params, x, y)  # noqa: F821 (_SPEC lives in each copy's globals)


def _step_entry(params, x, y):
    loss = forward_loss(_SPEC, params, x, y)  # noqa: F821 (as _SPEC, _INPUT_GRAD and torch)
    grads = torch.autograd.grad(loss, [*params, x] if _INPUT_GRAD else params)  # noqa: F821
    return loss.detach(), grads


def _fresh_copy(entry, name, spec, input_grad):
    # Dynamo keeps its cache, and its limit of 8 recompiles, on the code object, so a
    # function per key needs a code object of its own, or the ninth key would fail.
    import torch

    code = entry.__code__.replace(co_name=name)
    namespace = {**entry.__globals__, "_SPEC": spec, "_INPUT_GRAD": bool(input_grad), "torch": torch}
    return types.FunctionType(code, namespace, name)


class TorchCompileImplementation(Implementation):
    name = "torch-compile"
    description = "torch.compile of the whole step on the CPU (of the forward, backward via AOTAutograd, on CUDA)"
    # Each new batch shape compiles for seconds: property-based runs keep to a few
    # fixed shapes for it (harness.checks.planner.COMPILED_SHAPES).
    capabilities = Capabilities(dtypes={"float32", "float64"}, devices=("cuda", "cpu"), input_grad=True,
                                compiles_per_shape=True)

    def default_device(self):
        return "cuda" if torch_unavailable_reason("cuda") is None else "cpu"

    def unavailable_reason(self, device=None):
        return torch_unavailable_reason(device or self.default_device())

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return TorchCompilePrepared(spec, params, dtype, pick_device(device), input_grad)


class TorchCompilePrepared(TorchPrepared):
    def batch(self, x, y):
        batch = super().batch(x, y)
        known = len(_COMPILED)
        self._step, self._forward = compiled_functions(
            self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad
        )
        if len(_COMPILED) > known:
            # A new shape: compile (and warm up) both graphs now, outside any timing.
            # Dynamo reads trace_autograd_ops while tracing, which happens here only.
            with self.torch._dynamo.config.patch(trace_autograd_ops=True):
                self.to_numpy(self.step(batch))
            self.forward(batch)
        return batch

    def step(self, batch):
        if self._step is None:
            return self._step_with_backward(batch)
        x, y = batch
        if self.input_grad:
            x = x.detach().requires_grad_()
            loss, grads = self._step(self.flat, x, y)
            return loss, list(grads[:-1]), grads[-1]
        loss, grads = self._step(self.flat, x, y)
        return loss, list(grads), None

    def _step_with_backward(self, batch):
        # CUDA: the compiled forward, and its compiled backward run by the autograd engine.
        # The CUDA graphs' outputs live in memory the next replay overwrites: a new
        # step is marked as such, and what the caller keeps is cloned.
        x, y = batch
        x = x.detach().requires_grad_(self.input_grad)
        for p in self.flat:
            p.grad = None
        self.torch.compiler.cudagraph_mark_step_begin()
        loss = self._forward(self.flat, x, y)
        loss.backward()
        dx = None if x.grad is None else x.grad.clone()
        return loss.detach().clone(), [p.grad.clone() for p in self.flat], dx

    def forward(self, batch):
        with self.torch.no_grad():
            return self._forward(self.flat, *batch).clone()
