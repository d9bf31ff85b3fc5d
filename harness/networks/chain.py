"""A network as a chain of operators, and backprop as their backwards in reverse.

Each ``Node`` applies one operator to what flows from the node before it and to its
own parameters (``weights``: names and shapes, in the operator's input order after the
flowing input); the last node is the loss, applied to what flows and the batch's
targets. ``forward`` runs the chain and keeps every node's inputs (the activations
that flowed); ``backward`` starts from the loss's cotangent and applies each node's
VJP in reverse, handing the gradient of its flowing input to the node before.

The operators come from a *provider*: anything indexable by operator name giving a
``harness.Mapping`` (``forward(*inputs, **params)``, ``vjp(inputs, cotangents,
**params)``, and the float64 ``reference`` the oracle differentiates). Parameters are
a list with one tuple of arrays per node that has weights, e.g. ``[(W, b), (W, b)]``:
the shape the SGD update and the trajectory comparison already use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.core.mapping import Mapping, align_gradients, as_outputs


@dataclass(frozen=True)
class Node:
    """One operator in the chain: ``op`` (its name in the provider), static ``params``
    (stride, padding, the target shape of a reshape), ``weights`` ``((name, shape), ...)``."""

    op: str
    params: dict = field(default_factory=dict)
    weights: tuple = ()

    def __post_init__(self):
        if not isinstance(self.op, str) or not self.op:
            raise ValueError(f"Node op={self.op!r}: expected an operator name such as 'conv2d'")
        for entry in self.weights:
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                    and all(isinstance(n, int) and n > 0 for n in entry[1])):
                raise ValueError(f"Node {self.op!r}: weight {entry!r}, expected (name, shape) such as ('W', (8, 1, 3, 3))")


@dataclass(frozen=True)
class Network:
    """A chain of ``nodes`` ending in a loss, for inputs of ``input_shape`` per sample."""

    name: str
    nodes: tuple
    input_shape: tuple
    n_classes: int

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        if len(self.nodes) < 2 or not all(isinstance(n, Node) for n in self.nodes):
            raise ValueError(f"Network {self.name!r}: expected at least two Nodes, the last one the loss")

    @property
    def loss(self) -> Node:
        return self.nodes[-1]

    @property
    def weighted(self) -> list[int]:
        """Indices of the nodes that have weights, in order."""
        return [i for i, node in enumerate(self.nodes) if node.weights]

    def parameter_shapes(self) -> list[tuple]:
        return [tuple(shape for _, shape in self.nodes[i].weights) for i in self.weighted]

    def parameter_names(self) -> list[str]:
        """``"<op> <weight>"`` per parameter array, in order (``"conv2d W"``); an operator
        used twice gets its node index too."""
        ops = [n.op for n in self.nodes]
        names = []
        for i in self.weighted:
            node = self.nodes[i]
            label = node.op if ops.count(node.op) == 1 else f"{node.op}#{i}"
            names.extend(f"{label} {name}" for name, _ in node.weights)
        return names

    def node_label(self, i: int) -> str:
        return f"{self.nodes[i].op} (node {i} of {self.name})"

    def initial_parameters(self, seed: int, dtype: str = "float64") -> list[tuple]:
        """``torch.nn``'s default initialisation: every weight uniform in
        ``(-1/sqrt(fan_in), 1/sqrt(fan_in))`` where fan_in is the first weight's size
        per output (``in`` for linear, ``C * KH * KW`` for a convolution)."""
        rng = np.random.default_rng(seed)
        params = []
        for shapes in self.parameter_shapes():
            bound = 1.0 / math.sqrt(math.prod(shapes[0][1:]) or 1)
            params.append(tuple(rng.uniform(-bound, bound, shape).astype(dtype) for shape in shapes))
        return params

    def check_parameters(self, params) -> None:
        expected = self.parameter_shapes()
        got = [tuple(np.shape(p) for p in group) for group in params]
        if got != expected:
            raise ValueError(f"{self.name} parameters shaped {got}, expected {expected}")


def operator(provider, op: str) -> Mapping:
    """The provider's mapping for ``op``; a missing one is a ValueError naming it."""
    try:
        mapping = provider[op]
    except KeyError:
        name = getattr(provider, "name", type(provider).__name__)
        raise ValueError(f"provider {name!r} has no operator {op!r}") from None
    if not isinstance(mapping, Mapping):
        raise ValueError(f"operator {op!r}: the provider gave {type(mapping).__name__}, expected a harness.Mapping")
    return mapping


@dataclass
class Flow:
    """What one forward pass left: each node's inputs (what flowed into it, its weights,
    the targets for the loss) and the loss."""

    inputs: list
    loss: np.ndarray


def node_inputs(network: Network, params, i: int, flowing, target) -> tuple:
    node = network.nodes[i]
    if i == len(network.nodes) - 1:
        return (flowing, target)
    if node.weights:
        return (flowing, *params[network.weighted.index(i)])
    return (flowing,)


def forward(network: Network, provider, params, x, target, *, reference: bool = False) -> Flow:
    """Run the chain on ``x`` (N, *input_shape) and ``target``; ``reference`` runs
    each operator's float64 reference forward instead of the provider's forward."""
    flowing, inputs = x, []
    for i, node in enumerate(network.nodes):
        mapping = operator(provider, node.op)
        args = node_inputs(network, params, i, flowing, target)
        inputs.append(args)
        run = mapping.oracle_forward if reference else mapping.forward
        (flowing,) = as_outputs(run(*args, **node.params))[:1]
    return Flow(inputs, flowing)


def backward(network: Network, provider, flow: Flow, cotangent=None):
    """Each node's VJP in reverse: ``(parameter gradients per weighted node, dx)``.
    ``cotangent`` is the loss's (default 1)."""
    g = np.ones_like(flow.loss) if cotangent is None else np.asarray(cotangent)
    grads = {}
    for i in reversed(range(len(network.nodes))):
        node = network.nodes[i]
        inputs = flow.inputs[i]
        differentiable = [np.asarray(a).dtype.kind == "f" for a in inputs]
        vjp = operator(provider, node.op).vjp
        if vjp is None:
            raise ValueError(f"operator {node.op!r} has no vjp")
        answer = align_gradients(vjp(inputs, (g,), **node.params), differentiable)
        if node.weights:
            grads[i] = tuple(answer[1:])
        g = answer[0]
    return [grads[i] for i in network.weighted], g


def loss_and_gradients(network: Network, provider, params, x, target):
    """``(loss, gradients)`` for one batch: the step an SGD loop needs."""
    flow = forward(network, provider, params, x, target)
    grads, _ = backward(network, provider, flow)
    return float(flow.loss), grads


def predictions(network: Network, provider, params, x) -> np.ndarray:
    """The class each row of ``x`` is given: the argmax of what flows into the loss."""
    flowing = x
    for i, node in enumerate(network.nodes[:-1]):
        args = node_inputs(network, params, i, flowing, None)
        (flowing,) = as_outputs(operator(provider, node.op).forward(*args, **node.params))[:1]
    return np.argmax(flowing, axis=-1)
