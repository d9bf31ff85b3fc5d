"""Providers: who computes an operator's forward and backward. The built-ins (NumPy,
PyTorch autograd, pure Python) and plug-ins found by the entry-point group
``backprop_harness.ops`` are looked up the same way; ``mapping`` joins a provider's
forward and backward with the operator's record (reference, samples, dtypes) into a
``harness.Mapping`` that the mapping checks judge.

A provider's ``operators`` maps an operator name to a zero-argument factory returning an
object with ``forward(*inputs, **params)`` and ``vjp(inputs, cotangents, **params)``
(and optionally ``jvp``): a NumPy ``Operator`` class is one; so is a function returning a
``harness.Mapping`` (its forward, vjp and jvp are taken). An entry point's value,
``module:attr``, names a ``Provider`` or a dict ``{operator name: factory}``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.containment import described, user_interrupted
from harness.core.mapping import Mapping
from harness.ops.catalog import NUMPY_OPERATORS, RECORDS
from harness.ops.pure_python_ops import PURE_PYTHON_OPERATORS
from harness.ops.records import OpRecord
from harness.ops.torch_ops import TORCH_OPERATORS  # imports no torch: that happens when an operator is built

ENTRY_POINT_GROUP = "backprop_harness.ops"


@dataclass
class Provider:
    """``operators``: operator name -> factory of its forward/vjp(/jvp) object.
    ``available()`` says whether it can run here (``""``) or why not."""

    name: str
    operators: dict[str, Callable]
    description: str = ""
    available: Callable[[], str] = field(default=lambda: "")
    plugin: bool = False


def _numpy_provider() -> Provider:
    return Provider("numpy", dict(NUMPY_OPERATORS), "hand-written vectorised NumPy (harness/ops/numpy_*.py)")


def _torch_available() -> str:
    try:
        importlib.import_module("torch")
    except Exception as exc:
        return f"torch cannot be imported: {described(exc)}"
    return ""


def _torch_provider() -> Provider:
    return Provider("torch", dict(TORCH_OPERATORS), "PyTorch autograd (harness/ops/torch_ops.py)", _torch_available)


def _pure_python_provider() -> Provider:
    return Provider("pure-python", dict(PURE_PYTHON_OPERATORS), "lists of floats (harness/ops/pure_python_ops.py)")


_BUILT_INS = {"numpy": _numpy_provider, "torch": _torch_provider, "pure-python": _pure_python_provider}
_PROVIDERS: dict[str, Provider] = {}
_LOAD_FAILURES: dict[str, str] = {}


def _as_provider(name: str, obj) -> Provider:
    if isinstance(obj, Provider):
        return obj
    if isinstance(obj, dict):
        return Provider(name, dict(obj), plugin=True)
    raise ValueError(f"{ENTRY_POINT_GROUP} entry point {name!r} is {type(obj).__name__}, "
                     "expected a harness.ops.Provider or a dict {operator name: factory}")


def _load() -> None:
    if _PROVIDERS:
        return
    for name, build in _BUILT_INS.items():
        try:
            _PROVIDERS[name] = build()
        except ImportError as exc:  # a built-in that cannot be built here: listed as failed, not fatal
            _LOAD_FAILURES[name] = described(exc)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _PROVIDERS:
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) ignored: the name is taken",
                          stacklevel=2)
            continue
        try:
            provider = _as_provider(ep.name, ep.load())
            provider.name, provider.plugin = ep.name, True
            _PROVIDERS[ep.name] = provider
        except BaseException as exc:  # a broken plug-in must not break the harness
            if user_interrupted(exc):
                raise
            _LOAD_FAILURES[ep.name] = described(exc)
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed to load: "
                          f"{described(exc)}", stacklevel=2)


def providers() -> dict[str, Provider]:
    """Every provider: the built-ins, then plug-ins in entry-point order."""
    _load()
    return dict(_PROVIDERS)


def load_failures() -> dict[str, str]:
    _load()
    return dict(_LOAD_FAILURES)


def register_provider(provider: Provider) -> Provider:
    """Add ``provider`` (replacing one of that name) for this process: tests and notebooks."""
    _load()
    _PROVIDERS[provider.name] = provider
    return provider


def unregister_provider(name: str) -> None:
    _PROVIDERS.pop(name, None)


def operator(name: str) -> OpRecord:
    """The record of operator ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    if name not in RECORDS:
        raise ValueError(f"operator {name!r} is not known; expected one of: {', '.join(RECORDS)}")
    return RECORDS[name]


def provider(name: str) -> Provider:
    found = providers()
    if name not in found:
        why = _LOAD_FAILURES.get(name)
        raise ValueError(f"provider {name!r} " + (f"failed to load: {why}" if why else
                                                  f"is not known; expected one of: {', '.join(found)}"))
    return found[name]


def providers_of(op_name: str) -> list[str]:
    """The names of the providers that offer operator ``op_name``."""
    return [name for name, p in providers().items() if op_name in p.operators]


def mapping(op_name: str, provider_name: str = "numpy", dtypes=None, **params) -> Mapping:
    """Operator ``op_name`` as computed by provider ``provider_name``, as a ``harness.Mapping``
    named ``op_name[provider]``: the provider's forward, vjp and jvp; the record's reference,
    inputs, samples and dtypes (``dtypes`` narrows them); ``params`` override the record's
    defaults (the sample cases keep their own)."""
    record = operator(op_name)
    source = provider(provider_name)
    if op_name not in source.operators:
        raise ValueError(f"provider {provider_name!r} does not offer operator {op_name!r}; "
                         f"it offers: {', '.join(source.operators) or 'nothing'}")
    unknown = set(params) - set(record.params)
    if unknown:
        raise ValueError(f"operator {op_name!r} has no parameter {sorted(unknown)[0]!r}; "
                         f"its parameters: {', '.join(record.params) or 'none'}")
    why_not = source.available()
    if why_not:
        raise ValueError(f"provider {provider_name!r} cannot run here: {why_not}")
    implementation = source.operators[op_name]()
    for attr in ("forward", "vjp"):
        if not callable(getattr(implementation, attr, None)):
            raise ValueError(f"provider {provider_name!r}, operator {op_name!r}: its factory returned "
                             f"{type(implementation).__name__} without a callable {attr}; expected an object with "
                             "forward(*inputs, **params) and vjp(inputs, cotangents, **params), or a harness.Mapping")
    dtypes = record.dtypes if dtypes is None else ((dtypes,) if isinstance(dtypes, str) else tuple(dtypes))
    built = Mapping(f"{op_name}[{provider_name}]", implementation.forward, vjp=implementation.vjp,
                   jvp=getattr(implementation, "jvp", None), inputs=record.inputs,
                   params={**record.params, **params}, samples=record.samples, reference=record.reference,
                   dtypes=dtypes, second_order=getattr(implementation, "second_order", None),
                   vjp_terms=record.vjp_terms, jvp_terms=record.jvp_terms)
    if not params and dtypes == record.dtypes:
        built.ref = f"harness.ops:{op_name}@{provider_name}"  # what reproduce commands name it by
    return built
