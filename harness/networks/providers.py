"""The operator providers of ``harness.ops`` as a network sees them: ``{op name:
harness.Mapping}``, each mapping built on first use; and which providers can run a
given network (they provide every operator in it)."""

from __future__ import annotations

import dataclasses

from harness.core.mapping import Mapping
from harness.ops.chain import Network


class OpsProvider:
    """``harness.ops`` provider ``name``'s operators, indexable by operator name."""

    def __init__(self, name: str):
        from harness import ops

        self.name = name
        self.operators = ops.provider(name).operators
        self._mappings: dict[str, Mapping] = {}

    def __contains__(self, op: str) -> bool:
        return op in self.operators

    def __getitem__(self, op: str) -> Mapping:
        if op not in self._mappings:
            from harness import ops

            if op not in self.operators:
                raise KeyError(op)
            mapping = ops.mapping(op, self.name)
            names = ops.operator(op).input_names
            if len(names) == len(mapping.inputs) and not any(i.name for i in mapping.inputs):
                # a node's report then says "w", not "input 1"
                mapping = dataclasses.replace(mapping, inputs=[dataclasses.replace(i, name=n)
                                                               for i, n in zip(mapping.inputs, names)])
            self._mappings[op] = mapping
        return self._mappings[op]

    def __repr__(self):
        return f"<operators of provider {self.name!r}>"


def missing(network: Network, provider) -> list[str]:
    """The operators of ``network`` that ``provider`` does not provide."""
    return [op for op in dict.fromkeys(n.op for n in network.nodes) if op not in provider]


def network_providers(network: Network, names=None, flag: str = "--provider") -> tuple[dict, dict]:
    """``({name: OpsProvider}, {name: why left out})``: every registered provider (or the
    ``names`` asked for) that provides all of ``network``'s operators. A name asked for
    that is unknown or incomplete is a ValueError naming it (as given with ``flag``) and what it lacks."""
    from harness import ops

    known = list(ops.providers())
    chosen, left_out = {}, {}
    for name in names or known:
        if name not in known:
            raise ValueError(f"{flag} {name!r}: no operator provider of that name (known: {', '.join(known)})")
        unavailable = ops.provider(name).available()
        if unavailable:
            if names:
                raise ValueError(f"{flag} {name}: not available here: {unavailable}")
            left_out[name] = f"not available here: {unavailable}"
            continue
        provider = OpsProvider(name)
        lacking = missing(network, provider)
        if lacking and names:
            raise ValueError(f"{flag} {name}: provides no {', '.join(lacking)}, which {network.name} needs")
        if lacking:
            left_out[name] = f"provides no {', '.join(lacking)}"
        else:
            chosen[name] = provider
    return chosen, left_out
