"""``torch.compile`` of the step: CUDA where present, CPU otherwise.

The network is the torch built-in's: the MLP as a chain of the torch provider's
operators (``harness.impls.torch_impl.torch_chain``), compiled.

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

On the CPU a graph is compiled once per network: the batch dimension is left
symbolic (``torch._dynamo.decorators.mark_unbacked`` on ``x`` and ``y``, which,
unlike ``mark_dynamic``, does not specialise a batch of 1), every other size stays
fixed. The compiled step then serves every batch size; measured here it runs within
a few per cent of a graph compiled for one batch shape (``benchmarks/README.md``),
and a battery that steps at batches 1, N and 2N compiles once instead of three
times. On CUDA, CUDA graphs need fixed shapes: graphs are compiled with
``dynamic=False`` per batch shape there.

Inductor checks which vector instruction sets the compiler and the CPU support by
compiling and loading a test program for each: six builds and six interpreters on a
fresh cache (about 15 CPU-s, a quarter of the first compile), and the six
interpreters again in every new process. The step is compiled with
``cpp.vec_isa_ok`` set, so the CPU's own flags (``/proc/cpuinfo``) decide instead.
A compiler that cannot build for them then fails the compile: the step raises and
the verdict is ERROR, never a PASS of code that did not run.

Making the layer sizes symbolic too (one graph per chain of operators, kernels
shared between networks) was measured and left: symbolic sizes made each graph's
tracing and lowering slower (sympy) by about as much as the shared kernels saved.

The compiled functions are kept per key (spec, dtype, device, input_grad, and on
CUDA the batch shape): compiling happens when a batch of a new key is first
converted (``Prepared.batch``), never inside ``step``; the forward alone is
compiled on its first use (the checks never call it). Each key has functions of its
own, so dynamo's recompile limit is never reached.
"""

from __future__ import annotations

import types

from harness.core.protocol import Capabilities, Implementation
from harness.impls.torch_impl import TorchPrepared, chain_loss, pick_device, torch_chain, torch_unavailable_reason

# key -> (compiled step or None, compiled forward loss)
_COMPILED: dict = {}


def compile_key(spec, dtype, device, x_shape, y_shape, input_grad=False) -> tuple:
    """What a compiled graph is specialised to. input_grad changes x.requires_grad,
    and with it what the step differentiates; the batch size counts only on CUDA."""
    import torch

    shapes = (tuple(x_shape), tuple(y_shape)) if torch.device(device).type == "cuda" else ()
    return (spec, str(dtype), str(device), bool(input_grad), *shapes)


def compiled_functions(spec, dtype, device, x_shape, y_shape, input_grad=False):
    """``(step, forward)`` compiled for this key; ``step`` is ``None`` on CUDA."""
    import torch

    key = compile_key(spec, dtype, device, x_shape, y_shape, input_grad)
    if key not in _COMPILED:
        n = len(_COMPILED)
        if torch.device(device).type == "cuda":
            forward = torch.compile(_fresh_copy(_forward_entry, f"forward_loss_{n}", spec, input_grad),
                                    dynamic=False, fullgraph=True, mode="reduce-overhead")
            _COMPILED[key] = (None, forward)
        else:
            step = torch.compile(_fresh_copy(_step_entry, f"step_{n}", spec, input_grad), fullgraph=True)
            forward = torch.compile(_fresh_copy(_forward_entry, f"forward_loss_{n}", spec, input_grad), fullgraph=True)
            _COMPILED[key] = (step, forward)
    return _COMPILED[key]


def _forward_entry(params, x, y):
    torch._check(y.shape[0] == x.shape[0])  # noqa: F821 (one batch size: the symbols are one)
    return chain_loss(_CHAIN, params, x, y)  # noqa: F821 (_CHAIN lives in each copy's globals)


def _step_entry(params, x, y):
    torch._check(y.shape[0] == x.shape[0])  # noqa: F821 (as _CHAIN, _INPUT_GRAD and torch)
    loss = chain_loss(_CHAIN, params, x, y)  # noqa: F821
    grads = torch.autograd.grad(loss, [*params, x] if _INPUT_GRAD else params)  # noqa: F821
    return loss.detach(), grads


def _fresh_copy(entry, name, spec, input_grad):
    # Dynamo keeps its cache, and its limit of 8 recompiles, on the code object, so a
    # function per key needs a code object of its own, or the ninth key would fail.
    import torch

    code = entry.__code__.replace(co_name=name)
    # the chain of the torch provider's operators, resolved here, outside what dynamo traces
    namespace = {**entry.__globals__, "_CHAIN": torch_chain(spec), "_INPUT_GRAD": bool(input_grad), "torch": torch}
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
    _forward_ready: set = set()  # keys whose forward has been compiled (first use)
    _tracing = False  # the next step traces: mark its batch dimension symbolic

    def batch(self, x, y):
        batch = super().batch(x, y)
        known = len(_COMPILED)
        self._key = compile_key(self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad)
        self._step, self._forward = compiled_functions(
            self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad
        )
        if len(_COMPILED) > known:
            # A new key: compile (and warm up) the step now, outside any timing. Dynamo
            # reads trace_autograd_ops while tracing, which happens here only.
            self._tracing = True
            try:
                with (self.torch._dynamo.config.patch(trace_autograd_ops=True),
                      self.torch._inductor.config.patch({"cpp.vec_isa_ok": True})):
                    self.to_numpy(self.step(batch))
            finally:
                self._tracing = False
        return batch

    def _symbolic(self, *tensors):
        """Views of ``tensors`` whose batch dimension dynamo traces as a symbol (the
        mark lives on the tensor object: a view keeps the caller's own unmarked)."""
        views = [t.view(t.shape) for t in tensors]
        for t in views:
            self.torch._dynamo.decorators.mark_unbacked(t, 0)
        return views

    def step(self, batch):
        if self._step is None:
            return self._step_with_backward(batch)
        x, y = batch
        if self.input_grad:
            x = x.detach().requires_grad_()
        if self._tracing:
            x, y = self._symbolic(x, y)
        loss, grads = self._step(self.flat, x, y)
        if self.input_grad:
            return loss, list(grads[:-1]), grads[-1]
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
        if self._key not in self._forward_ready:  # compile on first use, outside the caller's timing loop
            self._forward_ready.add(self._key)
            with self.torch.no_grad():
                self._forward(self.flat, *(self._symbolic(*batch) if self._step is not None else batch))
        with self.torch.no_grad():
            return self._forward(self.flat, *batch).clone()
