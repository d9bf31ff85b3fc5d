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


# Operator providers as a real plug-in would ship them (module ``cnnbugs``, entry points
# PLUGIN_PROVIDERS in group backprop_harness.ops): installed on a path, worker and pool
# processes find them as the harness does.
PLUGIN_SOURCE = """
import os
import numpy as np
from harness import ops
from harness.ops.numpy_convolution import Conv2d

class WeightGradReversed(Conv2d):
    def weight_gradient(self, g, x, w, stride, padding, dilation):
        return np.flip(super().weight_gradient(g, x, w, stride, padding, dilation), axis=(2, 3))

class ExitsInBackward(Conv2d):
    def vjp(self, inputs, cotangents, **params):
        print("conv2d backward: exiting now", flush=True)
        os._exit(0)

COPY = dict(ops.provider("numpy").operators)
PLANTED = {**COPY, "conv2d": WeightGradReversed}
EXITS = {**COPY, "conv2d": ExitsInBackward}
"""
PLUGIN_PROVIDERS = {"numpy-copy": "cnnbugs:COPY", "numpy-reversed": "cnnbugs:PLANTED", "numpy-exits": "cnnbugs:EXITS"}


def write_plugin(folder) -> str:
    """PLUGIN_SOURCE and its .dist-info written into ``folder``: the path to put on
    PYTHONPATH for a harness process (and the processes it starts) to find them."""
    from harness.ops.registry import ENTRY_POINT_GROUP
    from tests.entry_points import write_distribution

    return write_distribution(folder, PLUGIN_PROVIDERS, {"cnnbugs": PLUGIN_SOURCE}, name="cnn-bugs", group=ENTRY_POINT_GROUP)
