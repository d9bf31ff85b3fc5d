"""A mapping under test: a forward and its backward (vector-Jacobian product), in
NumPy terms, whatever framework computes them.

``Mapping`` holds NumPy functions ``forward(*inputs, **params)`` and ``vjp(inputs,
cotangents, **params)`` (optionally ``jvp(inputs, tangents, **params)``); the
adapters in ``harness.mappings`` build one from a PyTorch or JAX function. ``Input``
describes how sample inputs are drawn. The helpers here call a mapping and bring its
answers into one shape (a tuple of NumPy arrays, ``None`` where an input has no
gradient) without judging them: the contract checks judge.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAPPING_DTYPES = ("float32", "float64")
KINDS = ("float", "int")


class NotOffered(Exception):
    """The framework behind a mapping does not offer what was asked (a JVP for a
    function without forward-mode rules, a second-order backward): the check that
    needs it is skipped with this reason, never failed."""


@dataclass(frozen=True)
class Input:
    """How sample values of one input are drawn.

    ``kind`` "float" inputs are differentiable: standard normal, or uniform on
    ``[low, high)`` where bounds are given. "int" inputs (indices, labels) get no
    gradient: uniform integers on ``[low, high)`` (``low`` defaults to 0; a ``high``
    small against the size repeats indices). ``kinks``: values where the mapping is not
    differentiable in this input (``(0.0,)`` for relu); a sample case places elements
    exactly there. ``ties``: a sample case repeats values (max, sort, max-pool).
    ``name`` labels the input in reports.
    """

    shape: tuple
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    kinks: tuple = ()
    ties: bool = False
    name: str = ""

    def __post_init__(self):
        shape = self.shape
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if not isinstance(shape, (tuple, list)) or not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
            raise ValueError(f"Input shape={self.shape!r}: expected a tuple of non-negative ints, e.g. (4, 3)")
        object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        if self.kind not in KINDS:
            raise ValueError(f"Input kind={self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.kind == "int":
            if self.high is None:
                raise ValueError("Input kind='int' needs high= (indices are drawn from [low, high))")
            if self.kinks or self.ties:
                raise ValueError("Input kind='int': kinks and ties apply to float inputs only")
            object.__setattr__(self, "low", 0 if self.low is None else self.low)
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if value is not None and not (isinstance(value, (int, float, np.number)) and math.isfinite(value)):
                raise ValueError(f"Input {bound}={value!r}: expected a finite number or None")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"Input low={self.low!r}, high={self.high!r}: expected low < high")
        kinks = self.kinks if isinstance(self.kinks, (tuple, list)) else (self.kinks,)
        if not all(isinstance(k, (int, float, np.number)) and math.isfinite(k) for k in kinks):
            raise ValueError(f"Input kinks={self.kinks!r}: expected finite numbers, e.g. (0.0,)")
        object.__setattr__(self, "kinks", tuple(float(k) for k in kinks))

    @property
    def differentiable(self) -> bool:
        return self.kind == "float"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(eq=False)
class Mapping:
    """A forward and its backward, checked like the MLP: see THE CONTRACT in the README.

    ``forward(*inputs, **params)`` returns an array or a tuple of arrays in the
    inputs' dtype; ``vjp(inputs, cotangents, **params)`` returns one entry per input
    (``None``, or nothing at all, for "int" inputs), each shaped and typed like its
    input; ``jvp(inputs, tangents, **params)`` returns one tangent per output.
    ``samples(rng, dtype)`` returns ``[(inputs, params, label), ...]``: cases of its
    own, used with (or instead of) the ones drawn from ``inputs``. ``reference``: a
    float64 forward the implementation's forward is compared with (and which the
    oracle differentiates). ``second_order``: ``(n_inputs) -> Mapping`` of ``(inputs...,
    cotangents...) -> vjp`` (the first ``n_inputs`` are the mapping's inputs, then one
    cotangent per float output) whose own ``vjp`` is the backward of the backward (the
    adapters supply it where the framework offers one).

    ``vjp_terms(inputs, cotangents, **params)`` (optional; one array per input, ``None``
    for "int" inputs, shaped like it) and ``jvp_terms(inputs, tangents, **params)``
    (one per output): for each element of the VJP (JVP), the sum of the absolute values of
    the terms a correct backward adds up to make it, intermediate ones included, in
    float64. Where those terms cancel (a normalisation of one element, or of two, whose
    output hardly depends on x while its backward forms rstd (gh - mean gh) with rstd up
    to 1/sqrt(eps)), a correct answer carries eps times them, far more than eps times
    what the Jacobian alone shows; the tolerances then scale with them
    (``harness.core.tolerances``, "declared terms").
    """

    name: str
    forward: Callable
    vjp: Callable | None = None
    jvp: Callable | None = None
    inputs: Sequence[Input] = ()
    params: dict | None = None
    samples: Callable | None = None
    reference: Callable | None = None
    dtypes: tuple = ("float64",)
    nondeterminism: float = 0.0
    second_order: Callable | None = None
    vjp_terms: Callable | None = None
    jvp_terms: Callable | None = None
    ref: str = field(default="", repr=False)  # "module:attr" it was loaded from, for reproduce commands

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Mapping name={self.name!r}: expected a non-empty string")
        for attr in ("forward", "vjp", "jvp", "samples", "reference", "second_order", "vjp_terms", "jvp_terms"):
            value = getattr(self, attr)
            if value is not None and not callable(value):
                raise ValueError(f"Mapping {self.name!r}: {attr}={value!r} is not callable")
        if self.forward is None:
            raise ValueError(f"Mapping {self.name!r}: forward is required")
        self.inputs = tuple(self.inputs)
        bad = [i for i, spec in enumerate(self.inputs) if not isinstance(spec, Input)]
        if bad:
            raise ValueError(f"Mapping {self.name!r}: inputs[{bad[0]}] is {self.inputs[bad[0]]!r}, expected harness.Input(shape, ...)")
        if not self.inputs and self.samples is None:
            raise ValueError(f"Mapping {self.name!r}: give inputs=(harness.Input(shape), ...) or samples=callable(rng, dtype)")
        if self.inputs and not any(spec.differentiable for spec in self.inputs):
            raise ValueError(f"Mapping {self.name!r}: no 'float' input, so there is nothing to differentiate")
        self.params = dict(self.params or {})
        dtypes = (self.dtypes,) if isinstance(self.dtypes, str) else tuple(self.dtypes)
        unknown = [d for d in dtypes if d not in MAPPING_DTYPES]
        if not dtypes or unknown:
            raise ValueError(f"Mapping {self.name!r}: dtypes={self.dtypes!r}, expected a non-empty subset of {MAPPING_DTYPES}")
        self.dtypes = dtypes
        if not (isinstance(self.nondeterminism, (int, float)) and 0 <= self.nondeterminism < 1):
            raise ValueError(f"Mapping {self.name!r}: nondeterminism={self.nondeterminism!r}, expected a number in [0, 1)")

    def __repr__(self):
        return f"<mapping {self.name!r}>"

    @property
    def oracle_forward(self) -> Callable:
        """What the oracle differentiates, in float64: the reference where given."""
        return self.reference or self.forward


def is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def as_outputs(value) -> tuple:
    """A forward's (or JVP's) answer as a tuple of arrays."""
    if isinstance(value, (tuple, list)):
        return tuple(None if v is None else np.asarray(v) for v in value)
    return (np.asarray(value),)


def copied(arrays) -> tuple:
    """Copies of a call's answer (``None`` entries kept): what the harness holds across
    later calls must not be the mapping's own arrays, which a mapping that answers in
    one buffer of its own, or changes an answer it gave, overwrites."""
    return tuple(None if a is None else np.array(a, copy=True) for a in arrays)


def align_gradients(grads, differentiable: Sequence[bool]) -> tuple:
    """A VJP's answer as one entry per input (``None`` for an input without gradient).

    Accepted: one entry per input; one entry per differentiable input (the others
    left out); a bare array for a mapping with one differentiable input. Anything else
    raises ``ValueError`` saying what came back and what was expected."""
    n_inputs, n_float = len(differentiable), sum(differentiable)
    if not isinstance(grads, (tuple, list)):
        if n_float == 1 and grads is not None:
            grads = (grads,)
        else:
            raise ValueError(f"the vjp returned {type(grads).__name__}, expected a tuple with one entry per input ({n_inputs})")
    raw, grads = grads, [None if g is None else np.asarray(g) for g in grads]
    for i, (r, g) in enumerate(zip(raw, grads)):
        if g is not None and g.dtype.kind not in "biufc":  # a dict, a generator, a string: not one array
            raise ValueError(f"the vjp's entry {i} is {type(r).__name__} (an array of {g.dtype}), expected an array "
                             "of numbers")
    if len(grads) == n_inputs:
        return tuple(grads)
    if len(grads) == n_float:
        it = iter(grads)
        return tuple(next(it) if d else None for d in differentiable)
    raise ValueError(f"the vjp returned {len(grads)} entries, expected one per input ({n_inputs})"
                     + (f" or one per float input ({n_float})" if n_float != n_inputs else ""))


def load_mapping(ref: str) -> Mapping:
    """The mapping ``"module:attr"`` names: a ``Mapping``, or a function of no
    arguments returning one. Errors name the reference and what was expected."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ValueError(f"--mapping {ref!r}: expected module:attr naming a harness.Mapping")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"--mapping {ref!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--mapping {ref!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Mapping) and inspect.isfunction(obj) and _takes_no_arguments(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise ValueError(f"--mapping {ref!r}: calling {attr}() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"--mapping {ref!r} is {type(obj).__name__}, expected a harness.Mapping "
                         "(or a function of no arguments returning one)")
    obj.ref = ref
    return obj


def _takes_no_arguments(function) -> bool:
    try:
        return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                   for p in inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False


def reference_of(mapping: Mapping) -> str:
    """``"module:attr"`` that names ``mapping`` for a reproduce command: where it was
    loaded from, else the module attribute holding it (looked up in the module that
    defines its forward), else a placeholder."""
    if mapping.ref:
        return mapping.ref
    module = sys.modules.get(getattr(mapping.forward, "__module__", "") or "")
    if module is not None and module.__name__ != "__main__":
        for name, value in vars(module).items():
            if value is mapping:
                return f"{module.__name__}:{name}"
    return "MODULE:ATTR"
