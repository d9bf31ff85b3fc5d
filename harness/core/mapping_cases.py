"""Concrete inputs for checking a mapping, drawn from a seed: the sample cases, the
cotangents and tangents that go with them, and case files that store a case.

The sample cases are where bugs show (the operator bug catalogue's lesson: many are
invisible on generic random inputs): plain random values; elements exactly on the
declared kinks; repeated values (pairs of equal neighbours along the last axis, so
max, sort and max-pool windows see ties); large magnitudes; a single sample (leading
dimension 1) and a width of 1 where the shapes allow.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from harness.core.case_files import read_arrays
from harness.core.mapping import Input, Mapping, is_float_array
from harness.core.vectors import uniform_unit

CASE_DIR_VARIABLE = "BACKPROP_HARNESS_CASE_DIR"
DEFAULT_CASE_DIR = "backprop-harness-cases"
LARGE_MAGNITUDE = 10.0  # the "large" case multiplies unbounded float inputs by this
KINK_FRACTION = 0.25  # of each float input's elements placed exactly on a declared kink


@dataclass(eq=False)
class MappingCase:
    """One reproducible set of inputs: float arrays all in ``dtype``, integer arrays as
    given, static ``params``; ``seed`` also draws the cotangents, tangents and probes."""

    inputs: tuple
    params: dict
    seed: int
    label: str = ""
    recipe: str = field(default="", compare=False)  # CLI arguments that rebuild it (--case-file F)
    # A degenerate shape the harness made up (a single sample, a width of 1): left out,
    # not failed, where the forward does not accept it.
    optional: bool = field(default=False, compare=False)

    @property
    def dtype(self) -> str:
        return next(x.dtype.name for x in self.inputs if is_float_array(x))

    @property
    def differentiable(self) -> tuple:
        return tuple(is_float_array(x) for x in self.inputs)

    @property
    def n_float_elements(self) -> int:
        return sum(x.size for x in self.inputs if is_float_array(x))

    def copy(self) -> MappingCase:
        """A deep copy, so an implementation that mutates its inputs harms only the copy."""
        return MappingCase(tuple(x.copy() for x in self.inputs), dict(self.params), self.seed, self.label, self.recipe,
                           self.optional)

    def describe(self) -> str:
        shapes = ", ".join("x".join(map(str, x.shape)) or "scalar" for x in self.inputs)
        return f"{self.label or 'case'} {self.dtype} ({shapes})"


def make_case(inputs, params, dtype: str, seed: int, label: str, owned: bool = False) -> MappingCase:
    """A case from arrays: float arrays cast to ``dtype``, integer ones kept; copies,
    unless the arrays are ``owned`` (drawn for the case: nobody else holds them)."""
    arrays = []
    for x in inputs:
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise ValueError(f"case {label!r}: an input of dtype {x.dtype} (expected float or integer arrays)")
        arrays.append(x.astype(dtype, copy=not owned) if x.dtype.kind == "f" else x if owned else x.copy())
    if not any(is_float_array(x) for x in arrays):
        raise ValueError(f"case {label!r}: no float input, so there is nothing to differentiate")
    return MappingCase(tuple(arrays), dict(params), seed, label)


def sample_cases(mapping: Mapping, dtype: str, seed: int = 0, size: int | None = None) -> list[MappingCase]:
    """The cases a mapping is checked on in ``dtype``: from its ``inputs`` (random,
    kinks, ties, large, single sample, width 1, as they apply) and its ``samples``.
    With ``size``, one random case whose shared leading dimension is scaled so that
    the first float input has about ``size`` elements."""
    if size is not None:
        if not mapping.inputs:
            raise ValueError(f"size={size}: mapping {mapping.name!r} gives no inputs= to scale (only samples=)")
        return [_drawn(mapping, _scaled(mapping.inputs, size), dtype, seed, "random", f"size {size}")]
    cases = []
    if mapping.inputs:
        specs = mapping.inputs
        variants = [("random", specs)]
        if any(s.kinks for s in specs):
            variants.append(("kinks", specs))
        if any(s.ties for s in specs):
            variants.append(("ties", specs))
        if any(s.differentiable and s.low is None and s.high is None for s in specs):
            variants.append(("large", specs))
        single = _single_sample(specs)
        if single:
            variants.append(("single sample", single))
        width = _width_one(specs)
        if width:
            variants.append(("width 1", width))
        for i, (label, shapes) in enumerate(variants):
            case = _drawn(mapping, shapes, dtype, seed + i, label, label)
            case.optional = shapes is not specs
            cases.append(case)
    if mapping.samples is not None:
        rng = np.random.default_rng(seed + 1000)
        drawn = mapping.samples(rng, dtype)
        for i, item in enumerate(drawn):
            if not (isinstance(item, (tuple, list)) and len(item) == 3):
                raise ValueError(f"mapping {mapping.name!r}: samples() item {i} is {type(item).__name__}, "
                                 "expected (inputs_tuple, params_dict, label)")
            inputs, params, label = item
            cases.append(make_case(inputs, {**mapping.params, **(params or {})}, dtype, seed + 100 + i, str(label)))
    return cases


def _drawn(mapping, specs, dtype, seed, how, label) -> MappingCase:
    # SFC64: a standard normal of a million elements in 9 ms where PCG64 (default_rng)
    # takes 12, a quarter of a forward plus backward of relu at that size
    rng = np.random.Generator(np.random.SFC64(seed))
    arrays = [_draw(spec, rng, how) for spec in specs]
    return make_case(arrays, mapping.params, dtype, seed, label, owned=True)


def _draw(spec: Input, rng, how: str) -> np.ndarray:
    if spec.kind == "int":
        return rng.integers(int(spec.low), int(spec.high), spec.shape, dtype=np.int64)
    bounded = spec.low is not None or spec.high is not None
    if bounded:
        low = spec.low if spec.low is not None else spec.high - 2.0
        high = spec.high if spec.high is not None else spec.low + 2.0
        x = rng.uniform(low, high, spec.shape)
    else:
        x = rng.standard_normal(spec.shape)  # normal(0, 1)'s very values, without its pass for loc and scale
    if how == "kinks" and spec.kinks and x.size:
        chosen = rng.random(spec.shape) < KINK_FRACTION
        chosen.flat[rng.integers(x.size)] = True  # at least one
        x = np.where(chosen, rng.choice(np.array(spec.kinks), spec.shape), x)
    if how == "ties" and spec.ties and x.ndim and x.shape[-1] > 1:
        # Equal neighbours in pairs: a pair tie is where every valid convention is
        # known (either element, or a split), and no larger tie group makes an order
        # statistic other than a min or max of its group.
        x = x.copy()
        x[..., 1::2] = x[..., 0:x.shape[-1] - 1:2]
    if how == "large" and not bounded:
        x = x * LARGE_MAGNITUDE
    return x


def _leading(specs):
    """The leading dimension every input shares (a batch), or None."""
    firsts = {s.shape[0] for s in specs if s.shape}
    return firsts.pop() if len(firsts) == 1 and all(s.shape for s in specs) else None


def _single_sample(specs):
    n = _leading(specs)
    if n is None or n < 2:
        return None
    return [Input((1,) + s.shape[1:], s.kind, s.low, s.high, s.kinks, s.ties, s.name) for s in specs]


def _width_one(specs):
    floats = [s for s in specs if s.differentiable]
    if len(specs) != 1 or len(floats[0].shape) < 2 or floats[0].shape[-1] < 2:
        return None
    s = floats[0]
    return [Input(s.shape[:-1] + (1,), s.kind, s.low, s.high, s.kinks, s.ties, s.name)]


def _scaled(specs, size: int):
    first = next(s for s in specs if s.differentiable)
    if not first.shape or first.size == 0:
        raise ValueError(f"size={size}: the first float input has shape {first.shape}; there is no leading dimension to scale")
    factor = max(1, math.ceil(size / first.size))
    lead = first.shape[0]
    return [Input((s.shape[0] * factor,) + s.shape[1:] if s.shape and s.shape[0] == lead else s.shape,
                  s.kind, s.low, s.high, s.kinks, s.ties, s.name) for s in specs]


def cotangents_for(outputs, dtype: str, seed: int) -> tuple:
    """Cotangents of unit variance (``uniform_unit``: continuous like a standard normal,
    cheaper to draw), one per float output (``None`` for integer outputs), in ``dtype``:
    the implementation and the oracle get the same values."""
    rng = np.random.default_rng(seed + 7)
    return tuple(uniform_unit(rng, np.shape(y), dtype).astype(dtype, copy=False) if is_float_array(np.asarray(y))
                 else None for y in outputs)


def tangents_for(case: MappingCase, seed_offset: int = 11) -> tuple:
    """Tangents of unit variance (``uniform_unit``), one per float input (``None`` for
    integer inputs)."""
    rng = np.random.default_rng(case.seed + seed_offset)
    return tuple(uniform_unit(rng, x.shape, x.dtype).astype(x.dtype, copy=False) if is_float_array(x) else None
                 for x in case.inputs)


# --- case files --------------------------------------------------------------

def case_dir() -> str:
    return os.path.abspath(os.environ.get(CASE_DIR_VARIABLE) or DEFAULT_CASE_DIR)


def case_path(mapping_name: str, case: MappingCase) -> str:
    """Where a failing case of ``mapping_name`` is written: named by a digest of its
    inputs, so the same case always lands in the same file."""
    digest = hashlib.sha256()
    for x in case.inputs:
        digest.update(f"{x.dtype}{x.shape}".encode() + np.ascontiguousarray(x).tobytes())
    digest.update(_encode_params(case.params).encode() + str(case.seed).encode())
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in mapping_name)
    return os.path.join(case_dir(), f"{slug}-{case.dtype}-{digest.hexdigest()[:12]}.npz")


def save_mapping_case(case: MappingCase, path) -> None:
    """Write ``case`` as one ``.npz`` of plain arrays: ``in0``, ``in1``, ..., ``params``
    (JSON text), ``seed`` and ``label``."""
    arrays = {f"in{i}": x for i, x in enumerate(case.inputs)}
    arrays["params"] = np.array(_encode_params(case.params))
    arrays["seed"] = np.array(case.seed, np.int64)
    arrays["label"] = np.array(case.label)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_mapping_case(path) -> MappingCase:
    """Read a case written by ``save_mapping_case`` (or by anyone, with those keys).
    Problems raise ``ValueError`` naming the file and what was expected."""
    data = read_arrays(path, "an .npz holding a mapping's inputs in0, in1, ... (and params, seed, label)")
    count = sum(1 for k in data if k.startswith("in") and k[2:].isdigit())
    if count == 0 or any(f"in{i}" not in data for i in range(count)):
        raise ValueError(f"case file {path}: expected inputs in0, in1, ... (found keys {', '.join(data)})")
    inputs = tuple(data[f"in{i}"] for i in range(count))
    try:
        params = _decode_params(str(data["params"])) if "params" in data else {}
    except ValueError as exc:
        raise ValueError(f"case file {path}: params is not the JSON text save_mapping_case writes ({exc})") from None
    try:
        seed = int(data["seed"]) if "seed" in data else 0
    except (TypeError, ValueError):
        raise ValueError(f"case file {path}: seed is {data['seed']!r}, expected an integer") from None
    label = str(data["label"]) if "label" in data else ""
    if any(x.dtype.kind == "f" and not np.isfinite(x).all() for x in inputs):
        raise ValueError(f"case file {path}: an input holds NaN or infinity; a case's inputs must be finite")
    floats = {x.dtype.name for x in inputs if x.dtype.kind == "f"}
    if len(floats) != 1 or floats - {"float32", "float64"}:
        raise ValueError(f"case file {path}: float inputs are {sorted(floats) or 'absent'}, expected all float32 or all float64")
    if any(x.dtype.kind not in "fiub" for x in inputs):
        raise ValueError(f"case file {path}: inputs must be float or integer arrays")
    return MappingCase(inputs, params, seed, f"{label} from {path}".strip(), f"--case-file {path}")


def _encode_params(params: dict) -> str:
    def encode(value):
        if isinstance(value, tuple):
            return {"__tuple__": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            return {str(k): encode(v) for k, v in value.items()}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ValueError(f"param value {value!r} ({type(value).__name__}) cannot be stored in a case file: "
                         "expected numbers, strings, None, and tuples, lists or dicts of them")

    return json.dumps({str(k): encode(v) for k, v in params.items()}, sort_keys=True)


def _decode_params(text: str) -> dict:
    def decode(value):
        if isinstance(value, dict):
            if set(value) == {"__tuple__"}:
                return tuple(decode(v) for v in value["__tuple__"])
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    try:
        return decode(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
