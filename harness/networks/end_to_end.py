"""A network checked two ways: end to end as one ``harness.Mapping`` (its parameters
and input ``x`` are the mapping's inputs, the labels an integer input, the loss its
output), and node by node on the activations that actually flowed through it for one
case, which names the operator whose backward is wrong.

The end-to-end mapping's backward is the chain's (each provider operator's VJP in
reverse); its ``reference`` is the chain of the operators' float64 reference forwards,
which the oracle differentiates.
"""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Input, Mapping
from harness.core.mapping_cases import MappingCase, make_case
from harness.ops.chain import Network, backward, forward, operator

BATCH = 4  # small enough that every element is compared (1,370 parameters + 4 * 64 pixels < 4096)


def _split(network: Network, inputs):
    """``(params as one tuple per weighted node, x, labels)`` from the flat inputs."""
    params, at = [], 0
    for shapes in network.parameter_shapes():
        params.append(tuple(inputs[at:at + len(shapes)]))
        at += len(shapes)
    return params, inputs[at], inputs[at + 1]


def _flat(params) -> list:
    return [array for group in params for array in group]


def network_mapping(network: Network, provider, *, provider_name: str = "", batch: int = BATCH,
                    dtypes=("float32", "float64")) -> Mapping:
    """``network`` with ``provider``'s operators as one mapping
    ``(parameters..., x, labels) -> loss``."""
    operators = {node.op: operator(provider, node.op) for node in network.nodes}  # every one exists, or say which not
    shapes = [shape for group in network.parameter_shapes() for shape in group]

    def loss(*inputs):
        params, x, labels = _split(network, inputs)
        return forward(network, operators, params, x, labels).loss

    def reference(*inputs):
        params, x, labels = _split(network, inputs)
        return forward(network, operators, params, x, labels, reference=True).loss

    def vjp(inputs, cotangents):
        params, x, labels = _split(network, inputs)
        (g,) = cotangents if isinstance(cotangents, (tuple, list)) else (cotangents,)
        grads, dx = backward(network, operators, forward(network, operators, params, x, labels), g)
        return (*_flat(grads), dx, None)

    def samples(rng, dtype):
        def case(label, n=batch):
            params = network.initial_parameters(int(rng.integers(2**31)), "float64")
            x = rng.uniform(0.0, 1.0, (n, *network.input_shape))
            labels = rng.integers(0, network.n_classes, n)
            return (*_flat(params), x, labels), {}, label

        # With the cases drawn from ``inputs`` (standard normal weights, and x10 of them):
        # the weights training starts from, and a batch of one.
        return [case("torch's initialisation, pixels in [0, 1)"), case("torch's initialisation, a single sample", n=1)]

    names = network.parameter_names()
    inputs = ([Input(shape, name=name) for shape, name in zip(shapes, names)]
              + [Input((batch, *network.input_shape), low=0.0, high=1.0, name="x"),
                 Input((batch,), kind="int", low=0, high=network.n_classes, name="labels")])
    label = f"{network.name}[{provider_name}]" if provider_name else network.name
    return Mapping(label, loss, vjp, inputs=inputs, samples=samples, reference=reference, dtypes=tuple(dtypes))


def node_cases(network: Network, provider, case: MappingCase) -> list[tuple[str, Mapping, MappingCase]]:
    """For one end-to-end ``case``: ``(label, operator mapping, case)`` per node, each case
    holding that node's inputs as they flowed through the network (the provider's
    forward) and the node's static params; the seed is the case's."""
    params, x, labels = _split(network, case.inputs)
    flow = forward(network, provider, params, x, labels)
    parts = []
    for i, node in enumerate(network.nodes):
        inputs = tuple(np.array(a, copy=True) for a in flow.inputs[i])
        item = make_case(inputs, node.params, case.dtype, case.seed, f"as it flowed in {case.label or 'the case'}")
        parts.append((network.node_label(i), operator(provider, node.op), item))
    return parts
