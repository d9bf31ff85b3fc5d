"""Implementations: the protocol they follow, the registry, and loading them by name.

An implementation has a ``name``, declared ``capabilities``, an availability probe
(``unavailable_reason``) and two phases: ``prepare`` converts the spec and parameters
to its native form once (compiling, moving to a device), and the returned
``Prepared`` object's ``step`` maps a native batch to a native result. Conversions
in and out (``Prepared.batch``, ``Prepared.to_numpy``) stay outside ``step`` so
that a timing of ``step`` measures the step alone.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.spec import ACTIVATIONS, LOSSES, NetworkSpec

ENTRY_POINT_GROUP = "backprop_harness.impls"


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
    # Relative difference allowed between two identical calls (0.0: bitwise equal).
    nondeterminism: float = 0.0

    def __post_init__(self):
        for name in ("activations", "losses", "dtypes"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        object.__setattr__(self, "devices", tuple(self.devices))

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


@dataclass
class StepResult:
    """A step's outcome in NumPy: the mean loss, ``[(dW, db), ...]`` and optionally ``dx``."""

    loss: Any
    grads: list
    dx: Any = None


class Prepared:
    """An implementation bound to one spec, parameter set, dtype and device.

    ``input_grad`` is set to ``True`` by the harness, right after ``prepare`` and
    before any ``batch`` call, when it wants ``dL/dx`` too (only for implementations
    that declare ``Capabilities(input_grad=True)``); otherwise the step may skip that
    last product, as a training step does.
    """

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
        loss, grads = result[0], result[1]
        dx = result[2] if len(result) > 2 else None
        return StepResult(loss, [(np.asarray(dW), np.asarray(db)) for dW, db in grads], dx)

    def synchronize(self) -> None:
        """Wait for queued device work (CUDA); a no-op on the CPU."""

    def set_params(self, params) -> None:  # pragma: no cover - optional
        """Replace the parameters in place, keeping compiled state (used for training)."""
        raise NotImplementedError(f"{type(self).__name__} cannot replace its parameters")


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

    def prepare(self, spec: NetworkSpec, params, *, dtype: str = "float64", device: str | None = None) -> Prepared:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self):
        return f"<implementation {self.name!r}>"


class FunctionImplementation(Implementation):
    """Wraps the learner's shortcut ``f(spec, params, x, y) -> (loss, grads)``.

    NumPy arrays in and out, ``params`` and ``grads`` as lists of ``(W, b)``. The
    function may declare ``f.activations``, ``f.losses``, ``f.dtypes`` or a whole
    ``f.capabilities``; otherwise every activation and loss in float64 is assumed.
    """

    def __init__(self, function: Callable, name: str | None = None):
        self.function = function
        self.name = name or f"{function.__module__}:{function.__qualname__}"
        self.description = (inspect.getdoc(function) or "").split("\n")[0]
        declared = getattr(function, "capabilities", None)
        if declared is None:
            declared = Capabilities(
                activations=getattr(function, "activations", ACTIVATIONS),
                losses=getattr(function, "losses", LOSSES),
                dtypes=getattr(function, "dtypes", ("float64",)),
            )
        self.capabilities = declared

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return _FunctionPrepared(self.function, spec, [(W, b) for W, b in params])


class _FunctionPrepared(Prepared):
    def __init__(self, function, spec, params):
        self.function, self.spec, self.params = function, spec, params

    def step(self, batch):
        x, y = batch
        return self.function(self.spec, self.params, x, y)

    def set_params(self, params):
        self.params = [(W, b) for W, b in params]


_REGISTRY: dict[str, Implementation] = {}
_LOAD_FAILURES: dict[str, str] = {}
_FROM_ENTRY_POINTS: set[str] = set()
_loaded = False


def register(impl: Implementation) -> Implementation:
    """Add ``impl`` to the registry under ``impl.name`` (replacing one of that name)."""
    if not impl.name:
        raise ImplementationError(f"{impl!r} has no name: set its 'name' attribute")
    _REGISTRY[impl.name] = impl
    return impl


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib.metadata import entry_points

    import impls  # noqa: F401  (the built-ins register themselves on import)

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) ignored: the name is taken", stacklevel=2)
            continue
        try:
            impl = as_implementation(ep.load(), name=ep.name)
            impl.name = ep.name  # the entry point's name is the implementation's name
            register(impl)
            _FROM_ENTRY_POINTS.add(ep.name)
        except Exception as exc:  # a broken plug-in must not break the harness
            reason = f"{type(exc).__name__}: {exc}"
            _LOAD_FAILURES[ep.name] = reason
            warnings.warn(f"{ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed to load: {reason}", stacklevel=2)


def refresh() -> None:
    """Forget entry-point implementations and discover them again (after installing a
    plug-in into a running interpreter, say). Built-ins and ``register`` calls stay."""
    global _loaded
    for name in list(_FROM_ENTRY_POINTS):
        _REGISTRY.pop(name, None)
    _FROM_ENTRY_POINTS.clear()
    _LOAD_FAILURES.clear()
    _loaded = False
    _load()


def implementations() -> dict[str, Implementation]:
    """Every registered implementation (built-ins and entry points), available or not."""
    _load()
    return dict(_REGISTRY)


def load_failures() -> dict[str, str]:
    """Entry points that failed to load, with the reason."""
    _load()
    return dict(_LOAD_FAILURES)


def available() -> dict[str, Implementation]:
    return {name: impl for name, impl in implementations().items() if impl.unavailable_reason() is None}


def resolve(target) -> Implementation:
    """An implementation from a registered name, ``"module:attr"``, or an object."""
    if not isinstance(target, str):
        return as_implementation(target)
    registry = implementations()
    if target in registry:
        return registry[target]
    if ":" not in target:
        known = ", ".join(sorted(registry)) or "none"
        raise ImplementationError(f"--impl {target!r}: no implementation of that name (registered: {known}; or give module:attr)")
    module_name, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        raise ImplementationError(f"--impl {target!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImplementationError(f"--impl {target!r}: module {module_name!r} has no attribute {attr!r}") from None
    return as_implementation(obj, name=target)


def as_implementation(obj, name: str | None = None) -> Implementation:
    """Accept an ``Implementation`` (class or instance), any object with ``prepare``,
    or a plain function ``f(spec, params, x, y) -> (loss, grads)``."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise ImplementationError(f"{name or obj.__qualname__}: could not instantiate {obj.__qualname__}(): {exc}") from None
    if isinstance(obj, Implementation):
        if name and not obj.name:
            obj.name = name
        return obj
    if hasattr(obj, "prepare"):
        return _adopt(obj, name)
    if callable(obj):
        return FunctionImplementation(obj, name)
    raise ImplementationError(
        f"{name or obj!r}: expected an Implementation, an object with prepare(), or a function "
        f"f(spec, params, x, y) -> (loss, grads); got {type(obj).__name__}"
    )


@dataclass
class _Adopted(Implementation):
    """A duck-typed object with ``prepare`` (and optionally the other attributes)."""

    inner: Any = None
    name: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)

    def unavailable_reason(self, device=None):
        probe = getattr(self.inner, "unavailable_reason", None)
        return probe(device) if probe else None

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return self.inner.prepare(spec, params, dtype=dtype, device=device)


def _adopt(obj, name):
    return _Adopted(
        inner=obj,
        name=getattr(obj, "name", None) or name or type(obj).__qualname__,
        capabilities=getattr(obj, "capabilities", None) or Capabilities(),
    )

