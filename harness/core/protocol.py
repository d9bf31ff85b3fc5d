"""The plug-in protocol: what an implementation declares and what the harness may ask of it.

An implementation has a ``name``, declared ``capabilities``, an availability probe
(``unavailable_reason``) and two phases: ``prepare`` converts the spec and parameters
to its native form once (compiling, moving to a device), and the returned
``Prepared`` object's ``step`` maps a native batch to a native result. Conversions
in and out (``Prepared.batch``, ``Prepared.to_numpy``) stay outside ``step`` so
that a timing of ``step`` measures the step alone.

Everything the harness asks of a prepared implementation is passed to ``prepare``
(``dtype``, ``device``, ``input_grad``); nothing is set on it afterwards, except
for plug-ins written before ``prepare`` took ``input_grad`` (see ``prepare``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.containment import described, message_of, user_interrupted
from harness.core.spec import ACTIVATIONS, DTYPES, LOSSES, NetworkSpec


class ImplementationError(ValueError):
    """An implementation could not be found, imported or understood."""


@dataclass(frozen=True)
class Capabilities:
    """What an implementation declares it can do; checks and cases are chosen from it."""

    activations: frozenset = frozenset(ACTIVATIONS)
    losses: frozenset = frozenset(LOSSES)
    dtypes: frozenset = frozenset({"float64"})
    devices: tuple = ("cpu",)
    input_grad: bool = False
    # Relative difference allowed between two identical calls beyond the dtype's
    # rounding (a difference within rounding is allowed anyway, with a note).
    nondeterminism: float = 0.0
    # Demand bitwise-equal answers to identical calls (as --strict-determinism does).
    deterministic: bool = False
    # Each new input shape costs a compilation (seconds): property-based runs keep to
    # a few fixed shapes.
    compiles_per_shape: bool = False
    # The largest step, in forward multiply-adds, that selections made on the user's
    # behalf (the default battery, default training) give this implementation; None:
    # no limit. A pure-Python step runs ~2-3 M multiply-adds a second.
    max_multiply_adds: int | None = None

    def __post_init__(self):
        """Check every field's type and value: a wrong declaration raises
        ``ImplementationError`` naming the field, what it got and what was expected."""
        for name, known in (("activations", ACTIVATIONS), ("losses", LOSSES), ("dtypes", DTYPES)):
            object.__setattr__(self, name, frozenset(_names(name, getattr(self, name), known)))
        object.__setattr__(self, "devices", tuple(_names("devices", self.devices, None)))
        if not self.devices:
            raise ImplementationError("Capabilities.devices=(): expected at least one device name, such as ('cpu',)")
        for name in ("input_grad", "compiles_per_shape", "deterministic"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ImplementationError(f"Capabilities.{name}={getattr(self, name)!r}: expected True or False")
        rel = self.nondeterminism
        if isinstance(rel, bool) or not isinstance(rel, (int, float, np.floating, np.integer)) or not (math.isfinite(rel) and rel >= 0):
            raise ImplementationError(f"Capabilities.nondeterminism={rel!r}: expected a finite number >= 0 (a relative difference)")
        object.__setattr__(self, "nondeterminism", float(rel))
        if self.deterministic and self.nondeterminism:
            raise ImplementationError(f"Capabilities(deterministic=True, nondeterminism={rel!r}): a bitwise-deterministic "
                                      "implementation declares no nondeterminism")
        limit = self.max_multiply_adds
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
            raise ImplementationError(f"Capabilities.max_multiply_adds={limit!r}: expected None or an integer >= 0")

    def unsupported(self, spec: NetworkSpec, dtype: str) -> str | None:
        """Why ``spec`` in ``dtype`` is outside these capabilities, or ``None``."""
        missing = sorted(set(spec.activations) - self.activations)
        if missing:
            return f"activation {', '.join(missing)} not supported"
        if spec.loss not in self.losses:
            return f"loss {spec.loss} not supported"
        if dtype not in self.dtypes:
            return f"dtype {dtype} not supported"
        return None

    def too_slow(self, spec: NetworkSpec, batch: int) -> str | None:
        """Why a step of ``spec`` at ``batch`` exceeds ``max_multiply_adds``, or ``None``."""
        cost = spec.multiply_adds(batch)
        if self.max_multiply_adds is not None and cost > self.max_multiply_adds:
            return (f"a step of {spec.describe()} at batch {batch} costs {cost:,} multiply-adds, "
                    f"beyond the declared max_multiply_adds {self.max_multiply_adds:,}")
        return None


@dataclass
class StepResult:
    """A step's outcome in NumPy: the mean ``loss``, ``grads`` as ``[(dW, db), ...]``
    and, when the input gradient was asked for, ``dx``."""

    loss: Any
    grads: list
    dx: Any = None

    @classmethod
    def from_native(cls, result) -> StepResult:
        """A ``StepResult`` from what a step returned: a ``StepResult``, or the
        documented shortcut ``(loss, grads)`` / ``(loss, grads, dx)``."""
        if isinstance(result, StepResult):
            return result
        if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
            raise TypeError(
                f"a step returned {type(result).__name__}; expected a StepResult or a tuple "
                "(loss, [(dW, db), ...]) or (loss, grads, dx)"
            )
        loss, grads, *rest = result
        return cls(loss, [(np.asarray(dW), np.asarray(db)) for dW, db in grads], rest[0] if rest else None)


class Prepared:
    """An implementation bound to one spec, parameter set, dtype and device."""

    # Whether the step must also return dL/dx. ``prepare`` receives it as an argument;
    # this attribute remains for plug-ins whose ``prepare`` predates that argument
    # (the harness then sets it right after ``prepare``, before any ``batch`` call).
    input_grad: bool = False

    def batch(self, x: np.ndarray, y: np.ndarray):
        """Convert a NumPy batch to native form (once, outside the step)."""
        return x, y

    def step(self, batch):  # pragma: no cover - abstract
        """Forward, loss and backward on a native batch; returns a native result."""
        raise NotImplementedError

    def forward(self, batch):
        """The loss alone, native. Defaults to a full step."""
        return self.step(batch)

    def to_numpy(self, result) -> StepResult:
        """Convert a native result to a ``StepResult`` of NumPy arrays."""
        return StepResult.from_native(result)

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA); a no-op on the CPU."""

    def set_params(self, params) -> None:  # pragma: no cover - optional
        """Replace the parameters in place, keeping compiled state (used for training)."""
        raise NotImplementedError(f"{type(self).__name__} cannot replace its parameters")


def _names(field, value, known) -> list[str]:
    """``value`` as a list of names: a collection of strings (not one string), each of
    ``known`` when given."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, set, frozenset)):
        example = ", ".join(repr(k) for k in (known or ("cpu", "cuda"))[:2])
        raise ImplementationError(f"Capabilities.{field}={_short(value)}: expected a collection of names such as ({example})")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ImplementationError(f"Capabilities.{field}: {_short(item)} is not a name (a non-empty string)")
        if known is not None and item not in known:
            raise ImplementationError(f"Capabilities.{field}: unknown {field[:-1] if field != 'losses' else 'loss'} "
                                      f"{item!r}; allowed: {', '.join(known)}")
    return list(value)


def _short(value) -> str:
    try:
        text = repr(value)
    except Exception:  # a plug-in's __repr__ that raises
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


class Implementation:
    """Base class for implementations. Subclasses set ``name`` and ``capabilities``
    and define ``prepare``; override ``unavailable_reason`` when a dependency may be
    missing."""

    name: str = ""
    description: str = ""
    capabilities: Capabilities = Capabilities()

    def unavailable_reason(self, device: str | None = None) -> str | None:
        """``None`` when usable on ``device`` (default: its default device), else why not."""
        return None

    def default_device(self) -> str:
        return self.capabilities.devices[0]

    def prepare(self, spec: NetworkSpec, params, *, dtype: str = "float64", device: str | None = None,
                input_grad: bool = False) -> Prepared:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self):
        return f"<implementation {self.name!r}>"


def prepare(impl: Implementation, spec: NetworkSpec, params, *, dtype: str, device: str | None,
            input_grad: bool = False) -> Prepared:
    """``impl.prepare(...)``, asking for ``dL/dx`` when ``input_grad``.

    A ``prepare`` without an ``input_grad`` parameter (plug-ins written to the first
    protocol) is called without it, and ``input_grad`` is then set on the prepared
    object, as that protocol promised."""
    if _accepts_input_grad(impl.prepare):
        return impl.prepare(spec, params, dtype=dtype, device=device, input_grad=input_grad)
    prepared = impl.prepare(spec, params, dtype=dtype, device=device)
    if input_grad:
        prepared.input_grad = True
    return prepared


def _accepts_input_grad(method) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: assume the old protocol
        return False
    return any(p.name == "input_grad" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


_UNSET = object()


class FunctionImplementation(Implementation):
    """Wraps the learner's shortcut ``f(spec, params, x, y) -> (loss, grads)``.

    NumPy arrays in and out, ``params`` and ``grads`` as lists of ``(W, b)``. The
    function may declare ``f.activations``, ``f.losses``, ``f.dtypes`` or a whole
    ``f.capabilities``; otherwise every activation and loss in float64 is assumed.
    """

    def __init__(self, function: Callable, name: str | None = None):
        self.function = function
        self.name = name or f"{getattr(function, '__module__', None)}:{getattr(function, '__qualname__', type(function).__name__)}"
        self.description = (inspect.getdoc(function) or "").split("\n")[0]
        declared = getattr(function, "capabilities", _UNSET)  # an explicit None is a wrong declaration
        if declared is _UNSET:
            try:
                declared = Capabilities(
                    activations=getattr(function, "activations", ACTIVATIONS),
                    losses=getattr(function, "losses", LOSSES),
                    dtypes=getattr(function, "dtypes", ("float64",)),
                )
            except ImplementationError as exc:
                raise ImplementationError(f"{self.name}: {str(exc).replace('Capabilities.', 'attribute ', 1)}") from None
        self.capabilities = declared

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return _FunctionPrepared(self.function, spec, [(W, b) for W, b in params])


class _FunctionPrepared(Prepared):
    def __init__(self, function, spec, params):
        self.function, self.spec, self.params = function, spec, params

    def step(self, batch):
        x, y = batch
        return self.function(self.spec, self.params, x, y)

    def set_params(self, params):
        self.params = [(W, b) for W, b in params]


@dataclass
class _Adopted(Implementation):
    """A duck-typed object with ``prepare`` (and optionally the other attributes)."""

    inner: Any = None
    name: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)

    def unavailable_reason(self, device=None):
        probe = getattr(self.inner, "unavailable_reason", None)
        return probe(device) if probe else None

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return prepare(self.inner, spec, params, dtype=dtype, device=device, input_grad=input_grad)


def as_implementation(obj, name: str | None = None) -> Implementation:
    """Accept an ``Implementation`` (class or instance), any object with ``prepare``,
    or a plain function ``f(spec, params, x, y) -> (loss, grads)``.

    The declaration is checked here, once: a ``name`` that is not a string, or
    ``capabilities`` that are not a ``Capabilities`` (``None``, a dict, fields of the
    wrong type), raise ``ImplementationError`` naming the plug-in and the field.
    Whatever the plug-in's own code raises meanwhile (any ``BaseException``) is
    reported the same way."""
    label = name or _label(obj)
    try:
        impl = _adopt(obj, name)
        declared_name = impl.name
        capabilities = impl.capabilities
    except ImplementationError:
        raise
    except BaseException as exc:  # noqa: BLE001 - a plug-in's own code ran above
        if user_interrupted(exc):
            raise
        raise ImplementationError(f"{label}: its declaration raised {described(exc)}") from None
    if not isinstance(declared_name, str) or not declared_name:
        raise ImplementationError(f"{label}: name={_short(declared_name)}; expected a non-empty string")
    if not isinstance(capabilities, Capabilities):
        raise ImplementationError(f"{declared_name}: capabilities={_short(capabilities)}; expected harness.Capabilities(...)")
    # The first protocol declared compilation per shape as an attribute beside the
    # capabilities; it is a capability now.
    if getattr(obj, "compiles_per_shape", False) is True and not capabilities.compiles_per_shape:
        impl.capabilities = dataclasses.replace(capabilities, compiles_per_shape=True)
    return impl


def _label(obj) -> str:
    name = getattr(obj, "name", None) if not inspect.isclass(obj) else None
    if isinstance(name, str) and name:
        return name
    qualname = getattr(obj, "__qualname__", None)
    return qualname if isinstance(qualname, str) else type(obj).__name__


def _adopt(obj, name):
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise ImplementationError(f"{name or obj.__qualname__}: could not instantiate {obj.__qualname__}(): {message_of(exc)}") from None
    if isinstance(obj, Implementation):
        if name and not obj.name:
            obj.name = name
        return obj
    if hasattr(obj, "prepare"):
        declared = getattr(obj, "capabilities", _UNSET)
        own = getattr(obj, "name", None)
        return _Adopted(inner=obj, name=own if own not in (None, "") else (name or type(obj).__qualname__),
                        capabilities=Capabilities() if declared is _UNSET else declared)
    if callable(obj):
        return FunctionImplementation(obj, name)
    raise ImplementationError(
        f"{_short(name or obj)}: expected an Implementation, an object with prepare(), or a function "
        f"f(spec, params, x, y) -> (loss, grads); got {type(obj).__name__}"
    )


def default_device(impl: Implementation) -> str:
    """``impl.default_device()``, contained: a probe that raises or answers something
    other than a device name is an ``ImplementationError`` naming the plug-in."""
    try:
        device = impl.default_device()
    except BaseException as exc:  # noqa: BLE001 - plug-in code
        if user_interrupted(exc):
            raise
        raise ImplementationError(f"{impl.name}: default_device() raised {described(exc)}") from None
    if not isinstance(device, str) or not device:
        raise ImplementationError(f"{impl.name}: default_device() returned {_short(device)}; expected a device name such as 'cpu'")
    return device


def availability(impl: Implementation, device: str | None = None) -> str | None:
    """``impl.unavailable_reason(device)``, contained: ``None`` when it can run on
    ``device``; else why not -- including a device it does not declare, and the
    probe itself raising (anything) or answering something other than ``None`` or a
    string."""
    if device is not None and device.split(":")[0] not in impl.capabilities.devices:
        return f"device {device!r} is not among the devices it declares ({', '.join(impl.capabilities.devices)})"
    try:
        reason = impl.unavailable_reason(device)
    except BaseException as exc:  # noqa: BLE001 - plug-in code
        if user_interrupted(exc):
            raise
        return f"unavailable_reason raised {described(exc)}"
    if reason is None or isinstance(reason, str):
        return reason or None
    return f"unavailable_reason returned {_short(reason)}; expected None or a string"
