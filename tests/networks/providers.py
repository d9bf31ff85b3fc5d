"""Operator providers for the network tests: harness.ops's NumPy provider, optionally
with operators swapped for bugs (the corpus's, or ones written in a test)."""

from __future__ import annotations

import contextlib
import dataclasses

from harness import ops
from harness.networks.providers import OpsProvider


def numpy_provider(*swapped) -> dict | OpsProvider:
    """The NumPy provider's operators; each operator class in ``swapped`` (a subclass of a
    harness.ops NumPy operator that gets one thing wrong) replaces the operator it derives from."""
    provider = OpsProvider("numpy")
    if not swapped:
        return provider
    operators = {op: provider[op] for op in provider.operators}
    for cls in swapped:
        bug = cls()
        op = cls.reference_class.name
        operators[op] = dataclasses.replace(operators[op], name=f"{op}[{cls.__name__}]", forward=bug.forward,
                                            vjp=bug.vjp, jvp=bug.jvp)
    return operators


@contextlib.contextmanager
def registered(name, *swapped):
    """The NumPy provider with ``swapped`` operators, registered as provider ``name`` in the block."""
    base = ops.provider("numpy").operators
    ops.register_provider(ops.Provider(name, {**base, **{cls.reference_class.name: cls for cls in swapped}}))
    try:
        yield name
    finally:
        ops.unregister_provider(name)
