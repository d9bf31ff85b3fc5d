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

On the CPU a graph is compiled once per network structure, not per network: the
batch dimension is symbolic (``torch._dynamo.decorators.mark_unbacked`` on ``x`` and
``y``, which, unlike ``mark_dynamic``, does not specialise a batch of 1) and so are
the layer sizes (``maybe_mark_dynamic`` on every other dimension of the inputs and
parameters). One graph then serves every batch and every network with the same chain
of operators: the battery's 6-5-3 and 784-500-10 ReLU networks share one, and a
battery that steps at batches 1, N and 2N compiles once instead of three times.
Graphs of different structures still share many of their C++ kernels, whose sources
no longer spell the sizes out (inductor's code cache is keyed by the source). What
stays in the key of a structure is the pattern of its sizes (which are equal, which
are 1): dynamo gives equal sizes one symbol and specialises a size of 1, so networks
of one pattern pass the same guards and never recompile. On CUDA, CUDA graphs need
fixed shapes: graphs are compiled with ``dynamic=False`` per network and batch shape
there.

Inductor checks which vector instruction sets the compiler and the CPU support by
compiling and loading a test program for each (six builds and six interpreters on
a fresh cache, a quarter of a cold start); the step is compiled with
``cpp.vec_isa_ok`` set, so the CPU's own flags (``/proc/cpuinfo``) decide instead.
A compiler that cannot build for them then fails the compile: the step raises, and
the implementation's verdict is ERROR, never a PASS of code that did not run.

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
    and with it what the step differentiates. On the CPU the network counts only by
    its structure (``network_structure``); on CUDA the network and the batch shape."""
    import torch

    if torch.device(device).type == "cuda":
        return (spec, str(dtype), str(device), bool(input_grad), tuple(x_shape), tuple(y_shape))
    return (network_structure(spec), str(dtype), str(device), bool(input_grad))


def network_structure(spec) -> tuple:
    """``spec`` without its sizes: its chain of operators with their parameters, and
    the pattern of its sizes (each size as the position where that value first
    occurs, -1 for a size of 1), which decides the guards of a graph traced with
    symbolic sizes (equal sizes share a symbol; a size of 1 is specialised)."""
    pattern = tuple(-1 if size == 1 else spec.sizes.index(size) for size in spec.sizes)
    chain = tuple((function, n, tuple(sorted(params.items()))) for function, n, params in torch_chain(spec))
    return chain, pattern


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
    _forward_ready: set = set()  # (key, sizes) whose forward has run once (first use)
    _stepped: set = set()  # (key, sizes) whose step has run once, under the settings below
    _tracing = False  # the next step may trace: mark its sizes symbolic

    def batch(self, x, y):
        batch = super().batch(x, y)
        self._key = compile_key(self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad)
        self._step, self._forward = compiled_functions(
            self.spec, self.dtype, self.device, batch[0].shape, batch[1].shape, self.input_grad
        )
        first = (self._key, self.spec.sizes)
        if first not in self._stepped:
            # The first step of a network: compile (and warm up) now, outside any timing.
            # Dynamo reads trace_autograd_ops while tracing, which can happen only here:
            # a network of a structure already compiled passes its guards (same key) or,
            # should one fail, recompiles here, under the same settings.
            self._stepped.add(first)
            self._tracing = True
            try:
                with (self.torch._dynamo.config.patch(trace_autograd_ops=True),
                      self.torch._inductor.config.patch({"cpp.vec_isa_ok": True})):
                    self.to_numpy(self.step(batch))
            finally:
                self._tracing = False
        return batch

    def _symbolic(self, *tensors):
        """Views of ``tensors`` whose sizes dynamo traces as symbols, the batch
        dimension as an unbacked one (the marks live on the tensor object: a view keeps
        the caller's own unmarked), and the same marks on the parameters' sizes."""
        views = [t.view(t.shape) for t in tensors]
        dynamo = self.torch._dynamo
        for t in views:
            dynamo.decorators.mark_unbacked(t, 0)
            for dim in range(1, t.dim()):
                dynamo.maybe_mark_dynamic(t, dim)
        for p in self.flat:
            for dim in range(p.dim()):
                dynamo.maybe_mark_dynamic(p, dim)
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
        if (self._key, self.spec.sizes) not in self._forward_ready:  # compile on first use, outside the caller's timing loop
            self._forward_ready.add((self._key, self.spec.sizes))
            with self.torch.no_grad():
                self._forward(self.flat, *(self._symbolic(*batch) if self._step is not None else batch))
        with self.torch.no_grad():
            return self._forward(self.flat, *batch).clone()
