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

``Bound`` is a network with its operators looked up once: the built-in MLP
implementations (``harness.impls``) step through one, which is why the chain lives in
the operator layer (below the implementations) rather than in ``harness.networks``.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field

import numpy as np

from harness.core.mapping import align_gradients, as_outputs
from harness.core.spec import NetworkSpec


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


def mlp(spec: NetworkSpec) -> Network:
    """The MLP of ``spec`` as a chain: linear -> activation per layer, then the loss.
    Parameters are the spec's ``[(W, b), ...]``; the activations' own slopes are the
    operators' defaults (leaky_relu's 0.01 is ``harness.core.spec.LEAKY_RELU_SLOPE``)."""
    nodes = []
    for (w_shape, b_shape), name in zip(spec.shapes(), spec.activations):
        nodes.append(Node("linear", {}, (("W", w_shape), ("b", b_shape))))
        if name != "identity":  # computes nothing: its node would only copy the logits and their cotangent
            nodes.append(Node(name))
    return Network(f"mlp {spec.describe()}", (*nodes, Node(spec.loss)), (spec.sizes[0],), spec.sizes[-1])


def operator(provider, op: str):
    """The provider's operator ``op``: a ``harness.Mapping`` or any object with
    ``forward`` and ``vjp``; a missing one is a ValueError naming it."""
    try:
        found = provider[op]
    except KeyError:
        name = getattr(provider, "name", type(provider).__name__)
        raise ValueError(f"provider {name!r} has no operator {op!r}") from None
    if not (callable(getattr(found, "forward", None)) and callable(getattr(found, "vjp", None))):
        raise ValueError(f"operator {op!r}: the provider gave {type(found).__name__}, expected a harness.Mapping "
                         "or an object with forward and vjp")
    return found


@dataclass
class Flow:
    """What one forward pass left: each node's inputs (what flowed into it, its weights,
    the targets for the loss) and the loss."""

    inputs: list
    loss: np.ndarray


class Bound:
    """``network`` with each node's operator looked up once in ``provider``.

    ``arrays`` (the default) reads any provider's answers leniently: a forward's first
    output as an array, a VJP's gradients aligned to the inputs (``align_gradients``).
    ``arrays=False`` takes a built-in provider's answers exactly as its convention has
    them (the one output; one gradient per input), so that they may be lists of floats
    (the pure-Python provider) and nothing is converted between nodes.
    """

    def __init__(self, network: Network, provider, *, arrays: bool = True):
        self.network, self.arrays = network, arrays
        weighted = network.weighted
        self.ops = [operator(provider, node.op) for node in network.nodes]
        self.slots = [weighted.index(i) if node.weights else None for i, node in enumerate(network.nodes)]
        self.n_weighted = len(weighted)
        # the first node may skip the gradient of what flows in (the batch) when its
        # operator says it can (``skips_input_grad``: its vjp takes ``input_grad=False``)
        # (a subclass's own vjp may not take it)
        self.skips_input_grad = bool(getattr(self.ops[0], "skips_input_grad", False)) and _takes(self.ops[0].vjp, "input_grad")
        # a weighted node whose vjp takes ``out=`` writes its parameter gradients into
        # arrays the caller gives (a worker's shared memory: see NumpyPrepared.step)
        self.writes_out = [slot is not None and _takes(op.vjp, "out") for op, slot in zip(self.ops, self.slots)]
        # a built-in provider's step is planned once, for both answers to "dx too?"
        self.plans = None if arrays else {wanted: StepPlan(self, input_grad=wanted) for wanted in (False, True)}

    def node_inputs(self, i: int, params, flowing, target) -> tuple:
        if i == len(self.ops) - 1:
            return (flowing, target)
        slot = self.slots[i]
        return (flowing,) if slot is None else (flowing, *params[slot])

    def forward(self, params, x, target, *, reference: bool = False, keep: bool = True) -> Flow:
        """Run the chain on ``x`` and ``target``; ``reference`` runs each operator's float64
        reference forward (a ``harness.Mapping``'s) instead; ``keep=False`` keeps no inputs."""
        flowing, inputs = x, []
        for i, (op, node) in enumerate(zip(self.ops, self.network.nodes)):
            args = self.node_inputs(i, params, flowing, target)
            if keep:
                inputs.append(args)
            flowing = (op.oracle_forward if reference else op.forward)(*args, **node.params)
            if self.arrays:
                (flowing,) = as_outputs(flowing)[:1]
        return Flow(inputs, flowing)

    def backward(self, flow: Flow, cotangent=None, *, input_grad: bool = True, out=None):
        """Each node's VJP in reverse: ``(parameter gradients per weighted node, dx)``;
        ``cotangent`` is the loss's (default 1); ``dx`` is ``None`` unless ``input_grad``;
        ``out``: per weighted node, arrays its gradients are written into where its
        operator can (``writes_out``), else new arrays are returned."""
        g = (np.ones_like(flow.loss) if self.arrays else 1.0) if cotangent is None else cotangent
        if self.arrays:
            g = np.asarray(g)
        grads = [None] * self.n_weighted
        for i in range(len(self.ops) - 1, -1, -1):
            node, inputs = self.network.nodes[i], flow.inputs[i]
            skip = i == 0 and not input_grad
            extra = {"out": out[self.slots[i]]} if out is not None and self.writes_out[i] else {}
            if skip and self.skips_input_grad:
                answer = self.ops[i].vjp(inputs, (g,), input_grad=False, **extra, **node.params)
            else:
                answer = self.ops[i].vjp(inputs, (g,), **extra, **node.params)
            if self.arrays:
                answer = align_gradients(answer, [np.asarray(a).dtype.kind == "f" for a in inputs])
            if self.slots[i] is not None:
                grads[self.slots[i]] = tuple(answer[1:])
            g = None if skip else answer[0]
        return grads, g

    def step(self, params, x, target, *, input_grad: bool = False, out=None):
        """One training step: ``(loss, parameter gradients per weighted node, dx or None)``."""
        if self.plans is not None:
            return self.plans[input_grad].step(params, x, target, out)
        flow = self.forward(params, x, target)
        grads, dx = self.backward(flow, input_grad=input_grad, out=out)
        return flow.loss, grads, dx


class StepPlan:
    """A built-in provider's training step through ``bound`` (``arrays=False``), with every
    decision ``Bound.forward`` and ``Bound.backward`` make per node and per step made once
    here: which weights each node takes, its static params bound to its operator's
    methods, whether the first node skips the batch's gradient, which nodes write into
    ``out=``, the loss's value and VJP in one call where its operator offers that
    (``forward_vjp``), and which nodes may work in place. Each call is still the
    operator's own ``forward`` and ``vjp``: the code the operator checks judge. What is
    left per node is the call and a tuple.

    In place: an operator that declares ``in_place`` (relu) takes ``out=`` in its forward
    and its VJP, and its VJP is the same whether it is handed the forward's input or its
    output. The plan passes ``out=`` its own input (cotangent) where that array is the
    plan's: made in this step by an operator that declares ``fresh`` (linear: its
    forward's output and its VJP's input gradient are new arrays that alias nothing it
    was given or returns), or by an in-place node working on such an array. The batch,
    the parameters and what the caller gets back are never written over. Both
    declarations count only on the class that makes them: a subclass (a variant, a
    planted bug) is called as the checks call it.
    """

    def __init__(self, bound: Bound, *, input_grad: bool):
        nodes, ops, slots, last = bound.network.nodes, bound.ops, bound.slots, len(bound.ops) - 1
        self.input_grad, self.n_weighted = input_grad, bound.n_weighted
        forwards, owned = [], False  # owned: what flows out of the node before is the plan's array
        for i in range(last):
            in_place = owned and _declares(ops[i], "in_place") and slots[i] is None
            # how the node is called: 0 on what flows alone, 1 over it (in place), 2 with
            # a (W, b) pair spelled out, 3 with any other weights unpacked
            how = (2 if len(nodes[i].weights) == 2 else 3) if slots[i] is not None else int(in_place)
            forwards.append((_bind(ops[i].forward, nodes[i].params), slots[i], how))
            owned = in_place or _declares(ops[i], "fresh")
        self.forwards = tuple(forwards)
        self.loss_forward, self.loss_vjp = _bind(ops[last].forward, nodes[last].params), _bind(ops[last].vjp, nodes[last].params)
        self.loss_forward_vjp = _fused(ops[last])
        if self.loss_forward_vjp is not None:
            self.loss_forward_vjp = _bind(self.loss_forward_vjp, nodes[last].params)
        backwards, owned = [], _declares(ops[last], "fresh")  # owned: the cotangent handed back is the plan's
        for i in range(last - 1, -1, -1):
            in_place = owned and _declares(ops[i], "in_place") and slots[i] is None
            # how the VJP is called (its keywords spelled out: through a partial they cost
            # more than the rest of the node's Python): 0 as it is, 1 with out= where the
            # caller gives it, 2 over its own cotangent (in place), 3 without the batch's
            # gradient (input_grad=False), 4 that and out= where given
            how = 2 if in_place else int(bound.writes_out[i])
            if i == 0 and not input_grad and bound.skips_input_grad:
                how += 3
            backwards.append((i, _bind(ops[i].vjp, nodes[i].params), slots[i], how))
            owned = in_place or _declares(ops[i], "fresh")
        self.backwards = tuple(backwards)

    def step(self, params, x, target, out=None):
        """``(loss, parameter gradients per weighted node, dx or None)``; ``out`` as in
        ``Bound.backward``."""
        saved, flowing = [], x  # what flowed into each node before the loss
        for forward, slot, how in self.forwards:
            if how == 2:  # spelled out: a call with *args (and its tuple) costs ~1k instructions
                W, b = params[slot]
                saved.append((flowing, W, b))
                flowing = forward(flowing, W, b)
            elif how == 0:
                saved.append((flowing,))
                flowing = forward(flowing)
            elif how == 1:  # over the plan's own array: relu's VJP reads its output as well
                saved.append((flowing,))
                flowing = forward(flowing, out=flowing)
            else:
                args = (flowing, *params[slot])
                saved.append(args)
                flowing = forward(*args)
        # the loss's cotangent (1) is known before its forward: value and VJP in one call
        if self.loss_forward_vjp is not None:
            loss, (g, _) = self.loss_forward_vjp((flowing, target), (1.0,))
        else:
            loss, g = self.loss_forward(flowing, target), self.loss_vjp((flowing, target), (1.0,))[0]
        grads = [None] * self.n_weighted
        for i, vjp, slot, how in self.backwards:
            if how == 0 or (how == 1 and out is None):
                answer = vjp(saved[i], (g,))
            elif how == 1:
                answer = vjp(saved[i], (g,), out=out[slot])
            elif how == 2:
                answer = vjp(saved[i], (g,), out=g)
            elif how == 3 or out is None:
                answer = vjp(saved[i], (g,), input_grad=False)
            else:
                answer = vjp(saved[i], (g,), input_grad=False, out=out[slot])
            if slot is not None:
                grads[slot] = tuple(answer[1:])
            g = answer[0]
        return loss, grads, g if self.input_grad else None


def _declares(op, name: str) -> bool:
    """Whether ``op``'s own class sets ``name`` (``fresh``, ``in_place``) true: a subclass
    that inherits the declaration does not count (it may have changed what made it true)."""
    return bool(type(op).__dict__.get(name, False))


def _bind(method, params: dict):
    """``method`` with the node's static ``params`` given once (none: the method itself)."""
    return functools.partial(method, **params) if params else method


def _fused(op):
    """``op.forward_vjp`` where the operator defines it together with its ``forward`` and
    ``vjp`` (a subclass that overrides either one -- a variant, a planted bug -- is run
    through them instead, so that it is what gets used)."""
    cls = type(op)
    if getattr(cls, "forward_vjp", None) is None:
        return None

    def owner(name):
        return next(k for k in cls.__mro__ if name in k.__dict__)

    fused = owner("forward_vjp")
    return op.forward_vjp if all(issubclass(fused, owner(name)) for name in ("forward", "vjp")) else None


def _takes(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def mlp_chain(spec: NetworkSpec, factories) -> Bound:
    """``spec``'s MLP (``mlp``) bound to a built-in provider's table ``factories`` (operator
    name -> zero-argument factory), its answers taken as its convention has them."""
    network = mlp(spec)
    return Bound(network, {node.op: factories[node.op]() for node in network.nodes}, arrays=False)


def forward(network: Network, provider, params, x, target, *, reference: bool = False) -> Flow:
    """Run the chain on ``x`` (N, *input_shape) and ``target``; ``reference`` runs
    each operator's float64 reference forward instead of the provider's forward."""
    return Bound(network, provider).forward(params, x, target, reference=reference)


def backward(network: Network, provider, flow: Flow, cotangent=None):
    """Each node's VJP in reverse: ``(parameter gradients per weighted node, dx)``.
    ``cotangent`` is the loss's (default 1)."""
    return Bound(network, provider).backward(flow, cotangent)


def loss_and_gradients(network: Network, provider, params, x, target):
    """``(loss, gradients)`` for one batch: the step an SGD loop needs."""
    bound = Bound(network, provider)
    flow = bound.forward(params, x, target)
    grads, _ = bound.backward(flow)
    return float(flow.loss), grads


def predictions(network: Network, provider, params, x) -> np.ndarray:
    """The class each row of ``x`` is given: the argmax of what flows into the loss."""
    bound, flowing = Bound(network, provider), x
    for i, node in enumerate(network.nodes[:-1]):
        (flowing,) = as_outputs(bound.ops[i].forward(*bound.node_inputs(i, params, flowing, None), **node.params))[:1]
    return np.argmax(flowing, axis=-1)
