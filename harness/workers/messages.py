"""What the worker protocol's messages carry, in JSON terms, for both sides: the
network, the capabilities a worker declares, and a step's answer.

``docs/worker-protocol.md`` describes every field; ``protocol.schema.json`` beside
this module is its machine-readable form. Everything read here is checked, and a
bad field is named in the error.
"""

from __future__ import annotations

import numpy as np

from harness.core.protocol import Capabilities, StepResult
from harness.core.spec import NetworkSpec
from harness.workers.wire import ProtocolError


def network_to_json(spec: NetworkSpec) -> dict:
    return {"sizes": list(spec.sizes), "activations": list(spec.activations), "loss": spec.loss}


def network_from_json(d) -> NetworkSpec:
    if not isinstance(d, dict):
        raise ProtocolError(f"network: expected an object with sizes, activations and loss, got {d!r:.80}")
    try:
        return NetworkSpec(tuple(d["sizes"]), tuple(d["activations"]), d["loss"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"network {d!r:.120}: {exc}") from None


def capabilities_to_json(caps: Capabilities) -> dict:
    return {
        "activations": sorted(caps.activations),
        "losses": sorted(caps.losses),
        "dtypes": sorted(caps.dtypes),
        "devices": list(caps.devices),
        "input_grad": caps.input_grad,
        "nondeterminism": caps.nondeterminism,
        "compiles_per_shape": caps.compiles_per_shape,
        "max_multiply_adds": caps.max_multiply_adds,
    }


_LISTS = ("activations", "losses", "dtypes", "devices")


def capabilities_from_json(d) -> Capabilities:
    """``Capabilities`` from a worker's declaration; absent fields keep their defaults."""
    if d is None:
        return Capabilities()
    if not isinstance(d, dict):
        raise ProtocolError(f"capabilities: expected an object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_LISTS) - {"input_grad", "nondeterminism", "compiles_per_shape", "max_multiply_adds"})
    if unknown:
        raise ProtocolError(f"capabilities: unknown field(s) {', '.join(unknown)}")
    kwargs = {}
    for name in _LISTS:
        if name in d:
            value = d[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ProtocolError(f"capabilities.{name} = {value!r:.80}: expected a list of strings")
            kwargs[name] = value
    for name in ("input_grad", "compiles_per_shape"):
        if name in d:
            if not isinstance(d[name], bool):
                raise ProtocolError(f"capabilities.{name} = {d[name]!r}: expected true or false")
            kwargs[name] = d[name]
    if "nondeterminism" in d:
        value = d["nondeterminism"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ProtocolError(f"capabilities.nondeterminism = {value!r}: expected a number in [0, 1)")
        kwargs["nondeterminism"] = float(value)
    if d.get("max_multiply_adds") is not None:
        value = d["max_multiply_adds"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProtocolError(f"capabilities.max_multiply_adds = {value!r}: expected an integer >= 1 or null")
        kwargs["max_multiply_adds"] = value
    return Capabilities(**kwargs)


def step_to_json(result: StepResult) -> dict:
    """A step's answer: the loss (an array, so its dtype is kept), ``[[dW, db], ...]``
    and ``dx`` (or null)."""
    try:
        grads = [[np.asarray(dW), np.asarray(db)] for dW, db in result.grads]
    except (TypeError, ValueError):
        raise TypeError(f"the step's gradients are {type(result.grads).__name__}, expected a list of (dW, db) pairs") from None
    return {"loss": np.asarray(result.loss), "grads": grads, "dx": None if result.dx is None else np.asarray(result.dx)}


def _array(value, where: str):
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.float64(value)
    raise ProtocolError(f"{where}: expected an array, got {type(value).__name__}")


def step_from_json(output) -> StepResult:
    """The ``StepResult`` a step's answer describes (``inputs_observed`` is set by the caller)."""
    if not isinstance(output, dict):
        raise ProtocolError(f"a step's output must be an object with loss and grads, got {type(output).__name__}")
    for key in ("loss", "grads"):
        if key not in output:
            raise ProtocolError(f"a step's output has no {key!r}")
    grads = output["grads"]
    if not isinstance(grads, list) or not all(isinstance(p, list) and len(p) == 2 for p in grads):
        raise ProtocolError("grads: expected a list of [dW, db] pairs")
    pairs = [(_array(dW, f"grads[{i}][0]"), _array(db, f"grads[{i}][1]")) for i, (dW, db) in enumerate(grads)]
    dx = output.get("dx")
    return StepResult(_array(output["loss"], "loss"), pairs, None if dx is None else _array(dx, "dx"))
