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
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.results import Verdict
from harness.core.spec import ACTIVATIONS, LOSSES, NetworkSpec


class ImplementationError(ValueError):
    """An implementation could not be found, imported or understood."""


class ImplementationGone(Exception):
    """The process running the implementation died (``Verdict.CRASHED``) or stopped
    answering (``Verdict.TIMEOUT``): no answer will come, so the checks that remain
    for this case are not run."""

    def __init__(self, verdict: Verdict, message: str):
        super().__init__(message)
        self.verdict = verdict


class RemoteError(Exception):
    """The implementation failed in another process, which said what and where: the
    message is the whole summary (an ERROR verdict)."""


def summarise(exc: BaseException, phase: str) -> str:
    """``"step raised ValueError: message (file.py:12)"``: what an implementation raised, where."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{phase} raised {type(exc).__name__}: {exc}{where}"


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
    # Each new input shape costs a compilation (seconds): property-based runs keep to
    # a few fixed shapes.
    compiles_per_shape: bool = False
    # The largest step, in forward multiply-adds, that selections made on the user's
    # behalf (the default battery, default training) give this implementation; None:
    # no limit. A pure-Python step runs ~2-3 M multiply-adds a second.
    max_multiply_adds: int | None = None

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
    and, when the input gradient was asked for, ``dx``. ``inputs_observed`` is false
    when the step ran where the harness cannot see its inputs afterwards (a worker
    that does not send them back), so that a mutation of them would go unseen."""

    loss: Any
    grads: list
    dx: Any = None
    inputs_observed: bool = True

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

    # Seconds the last step took where it ran, when that is another process (a worker
    # times its own step); None: the caller times it.
    last_seconds: float | None = None
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

    def timed_steps(self, batch, *, min_runs: int, min_seconds: float) -> list[float]:
        """Seconds of each of at least ``min_runs`` steps on a native ``batch``, run
        until ``min_seconds`` have passed in all; each timing covers ``step`` and
        ``synchronize`` alone. A worker runs this inside its own process. (Not
        ``time_...``: asv takes any class with such a method for a benchmark.)"""
        samples: list[float] = []
        while len(samples) < min_runs or sum(samples) < min_seconds:
            start = time.perf_counter()
            self.step(batch)
            self.synchronize()
            samples.append(time.perf_counter() - start)
        return samples

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

    def command_line_name(self) -> str:
        """What ``--impl`` takes to name this implementation (in reproduce lines)."""
        return self.name

    def prepare(self, spec: NetworkSpec, params, *, dtype: str = "float64", device: str | None = None,
                input_grad: bool = False) -> Prepared:
        raise NotImplementedError  # pragma: no cover

    def __repr__(self):
        return f"<implementation {self.name!r}>"


class WorkerCommand(Implementation):
    """An implementation that is a program speaking the worker protocol
    (``docs/worker-protocol.md``) on its stdin and stdout, in any language.

    Make one the value of an entry point (``module:attr``) to register a program:
    ``WorkerCommand(["/path/to/mlp-c", "--worker"])``. Its capabilities come from
    the program's answer to ``start``; it cannot be prepared in the harness's own
    process."""

    def __init__(self, argv, name: str = ""):
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ImplementationError(f"WorkerCommand({argv!r}): expected a non-empty list of strings (the program and its arguments)")
        self.argv = list(argv)
        self.name = name

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        raise ImplementationError(f"{self.name or self.argv[0]} is a worker program: run it through harness.workers")


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
    or a plain function ``f(spec, params, x, y) -> (loss, grads)``."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise ImplementationError(f"{name or obj.__qualname__}: could not instantiate {obj.__qualname__}(): {exc}") from None
    if isinstance(obj, Implementation):
        if name and not obj.name:
            obj.name = name
        impl = obj
    elif hasattr(obj, "prepare"):
        impl = _Adopted(inner=obj, name=getattr(obj, "name", None) or name or type(obj).__qualname__,
                        capabilities=getattr(obj, "capabilities", None) or Capabilities())
    elif callable(obj):
        impl = FunctionImplementation(obj, name)
    else:
        raise ImplementationError(
            f"{name or obj!r}: expected an Implementation, an object with prepare(), or a function "
            f"f(spec, params, x, y) -> (loss, grads); got {type(obj).__name__}"
        )
    # The first protocol declared compilation per shape as an attribute beside the
    # capabilities; it is a capability now.
    if getattr(obj, "compiles_per_shape", False) and not impl.capabilities.compiles_per_shape:
        impl.capabilities = dataclasses.replace(impl.capabilities, compiles_per_shape=True)
    return impl
