"""The CNN written directly in PyTorch (``torch.nn.functional``), differentiated by
autograd as one graph: an implementation independent of the operator chain, trained
beside it. torch is imported only here, when used."""

from __future__ import annotations

from harness.networks.steps import images
from harness.ops.chain import Network

TORCH_CNN = "torch-cnn"  # its name as a trainee (train --model)
_OPS = ("conv2d", "relu", "max_pool2d", "reshape", "linear", "cross_entropy")


def torch_cnn_step(network: Network, threads: int | None = 1):
    """``step(params, x, y) -> (loss, gradients)`` by torch autograd for ``network`` (the
    chain ``harness.networks.cnn.cnn`` builds)."""
    import torch
    import torch.nn.functional as F

    if tuple(n.op for n in network.nodes) != _OPS:
        raise ValueError(f"the torch CNN computes {' -> '.join(_OPS)}, not {network.name}'s "
                         f"{' -> '.join(n.op for n in network.nodes)}")
    if threads:
        torch.set_num_threads(threads)
    conv, pool, flat = network.nodes[0].params, network.nodes[2].params, network.nodes[3].params

    def step(params, x, y):
        (cw, cb), (lw, lb) = [[torch.from_numpy(p).requires_grad_() for p in group] for group in params]
        h = F.conv2d(torch.from_numpy(images(network, x)), cw, cb, stride=conv["stride"], padding=conv["padding"],
                     dilation=conv["dilation"])
        h = F.max_pool2d(F.relu(h), pool["kernel"], pool["stride"], pool["padding"])
        loss = F.cross_entropy(F.linear(h.reshape(flat["shape"]), lw, lb), torch.from_numpy(y))
        grads = torch.autograd.grad(loss, [cw, cb, lw, lb])
        g = [t.numpy() for t in grads]
        return float(loss.detach()), [(g[0], g[1]), (g[2], g[3])]

    return step
