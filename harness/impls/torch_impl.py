"""PyTorch eager autograd: the MLP's forward as a chain of the torch provider's operators,
then ``loss.backward()``."""

from __future__ import annotations

import functools
import importlib.util

from harness.core.protocol import Capabilities, Implementation, Prepared
from harness.ops.chain import mlp
from harness.ops.torch_ops import torch_function


def torch_unavailable_reason(device: str | None) -> str | None:
    """Why torch cannot run on ``device`` here, or ``None``."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    if device and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
    return None


def pick_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TorchImplementation(Implementation):
    name = "torch"
    description = "PyTorch eager autograd (loss.backward())"
    capabilities = Capabilities(dtypes={"float32", "float64"}, devices=("cpu", "cuda"), input_grad=True)

    def unavailable_reason(self, device=None):
        return torch_unavailable_reason(device or "cpu")

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return TorchPrepared(spec, params, dtype, device or "cpu", input_grad)


@functools.cache
def torch_chain(spec) -> tuple:
    """``spec``'s MLP (``harness.ops.chain.mlp``: linear -> activation -> ... -> loss) as
    ``((torch function, number of weights, params), ...)``, one per node: the torch
    provider's operators (``harness.ops.torch_ops``), whose backward is autograd's."""
    return tuple((torch_function(node.op), len(node.weights), node.params) for node in mlp(spec).nodes)


def chain_loss(chain, params, x, y):
    """The mean loss of ``chain`` (``torch_chain``) as a differentiable torch scalar, each
    node applied to what flows from the one before; ``params`` is a flat list W0, b0, W1, ..."""
    a, at = x, 0
    for function, n_weights, node_params in chain[:-1]:
        a = function(a, *params[at:at + n_weights], **node_params)
        at += n_weights
    function, _, node_params = chain[-1]
    return function(a, y, **node_params)


def forward_loss(spec, params, x, y):
    """The mean loss as a differentiable torch scalar; ``params`` is a flat list W0, b0, W1, ..."""
    return chain_loss(torch_chain(spec), params, x, y)


class TorchPrepared(Prepared):
    def __init__(self, spec, params, dtype, device, input_grad=False):
        import torch

        self.torch, self.spec, self.device, self.input_grad = torch, spec, torch.device(device), input_grad
        self.dtype = getattr(torch, dtype)
        self.flat = [
            torch.tensor(p, dtype=self.dtype, device=self.device).requires_grad_() for W, b in params for p in (W, b)
        ]

    def set_params(self, params):
        with self.torch.no_grad():
            for tensor, value in zip(self.flat, (p for W, b in params for p in (W, b))):
                tensor.copy_(self.torch.as_tensor(value))

    def batch(self, x, y):
        torch = self.torch
        x = torch.tensor(x, dtype=self.dtype, device=self.device)
        if self.spec.loss == "cross_entropy":
            y = torch.tensor(y, dtype=torch.long, device=self.device)
        else:
            y = torch.tensor(y, dtype=self.dtype, device=self.device)
        return x, y

    def step(self, batch):
        x, y = batch
        x = x.detach().requires_grad_(self.input_grad)
        for p in self.flat:
            p.grad = None
        loss = forward_loss(self.spec, self.flat, x, y)
        loss.backward()
        return loss.detach(), [p.grad for p in self.flat], x.grad

    def forward(self, batch):
        with self.torch.no_grad():
            return forward_loss(self.spec, self.flat, *batch)

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def to_numpy(self, result):
        return tensors_to_numpy(result)


def tensors_to_numpy(result):
    from harness.core.protocol import StepResult

    loss, flat, dx = result
    arrays = [t.detach().cpu().numpy() for t in flat]
    return StepResult(
        loss.detach().cpu().numpy()[()],
        [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)],
        None if dx is None else dx.detach().cpu().numpy(),
    )
