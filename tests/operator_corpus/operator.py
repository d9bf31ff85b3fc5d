"""The record every corpus operator is written as, and the bridge to ``harness.Mapping``.

An ``Operator`` is a forward, a VJP (and a JVP where it is cheap) in plain NumPy, the
inputs the engine may draw, and ``samples``: hand-made cases that expose the mistakes
people make (ties, repeated indices, stride < kernel, padding, non-square weights,
inputs exactly on kinks, large magnitudes, width 1, a single sample). Each correct
operator is declared ``class Relu(Elementwise, correct=True)``; a bug is a subclass of
the correct one that gets exactly one thing wrong; a correct variant is a subclass that
picks another valid convention (``correct=True`` only where it changes the forward too,
such as GELU's tanh approximation). ``reference`` is always the forward of the nearest
class declared correct, in float64, so a bug that changes the forward is caught by
comparing forwards.

Calling conventions (THE CONTRACT in notes/spec11.md): ``forward(*inputs, **params)``
returns an array in the inputs' dtype; ``vjp(inputs, cotangents, **params)`` returns a
tuple with one entry per input (``None`` for integer inputs); ``jvp(inputs, tangents,
**params)`` returns a tuple of output tangents. ``cotangents`` may be given as a tuple
(one per output) or, for a single output, as the bare array: ``single`` accepts both.

``harness`` is imported only inside ``mapping``: this package imports, and its tests
that need no engine run, before ``harness.Mapping`` exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class In:
    """How the engine may draw one input; becomes ``harness.Input`` (same fields)."""

    shape: tuple
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    kinks: tuple = ()
    ties: bool = False


def single(cotangents):
    """The one cotangent of a single-output mapping, given bare or as a 1-tuple."""
    if isinstance(cotangents, (tuple, list)):
        (cotangent,) = cotangents
        return cotangent
    return cotangents


def as_dtype(xs, dtype):
    """Float arrays cast to ``dtype``; integer arrays (indices, labels) left alone."""
    return tuple(x if np.issubdtype(np.asarray(x).dtype, np.integer) else np.asarray(x, dtype=dtype) for x in xs)


def widened(xs):
    """Real floats as float64 and complex as complex128 (a complex-step oracle's perturbation
    survives); integer arrays left alone."""
    return tuple(x if np.issubdtype(np.asarray(x).dtype, np.integer) else
                 np.asarray(x, dtype=np.complex128 if np.iscomplexobj(x) else np.float64) for x in xs)


def normal(rng, shape, dtype, scale=1.0, offset=0.0):
    return (offset + scale * rng.standard_normal(shape)).astype(dtype)


def grid(rng, shape, dtype, values=(-1.0, 0.0, 1.0, 2.0)):
    """Values drawn from a few levels: ties everywhere (max, max-pool, sort)."""
    return rng.choice(np.asarray(values), size=shape).astype(dtype)


class Operator:
    """A mapping under test: forward, VJP, optional JVP, inputs, params, samples."""

    name = ""
    inputs: tuple[In, ...] = ()
    params: dict = {}
    source = ""  # for a bug: where the mistake was reported
    reference_class: type[Operator]

    def __init_subclass__(cls, correct=False, **kwargs):
        super().__init_subclass__(**kwargs)
        if correct:
            cls.reference_class = cls
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def forward(self, *inputs, **params):
        raise NotImplementedError

    def vjp(self, inputs, cotangents, **params):
        raise NotImplementedError

    jvp = None  # an operator with a cheap JVP defines the method

    def samples(self, rng, dtype) -> list:
        """Hand-made cases: ``[(inputs, params, label), ...]`` in ``dtype``."""
        return []

    def reference(self, *inputs, **params):
        """The correct operator's forward, evaluated in float64 whatever it is given (complex
        inputs, a complex-step oracle's, in complex128: casting them would drop the step)."""
        return self.reference_class().forward(*widened(inputs), **params)


def mapping(operator: Operator, dtype: str = "float64", samples=None):
    """``operator`` as a ``harness.Mapping`` running in ``dtype`` (needs the engine);
    ``samples`` replaces the operator's own sample cases (e.g. one large case)."""
    import harness

    return harness.Mapping(
        operator.name,
        operator.forward,
        vjp=operator.vjp,
        jvp=operator.jvp,
        inputs=[harness.Input(i.shape, kind=i.kind, low=i.low, high=i.high, kinks=i.kinks, ties=i.ties)
                for i in operator.inputs],
        params=dict(operator.params),
        samples=samples or operator.samples,
        reference=operator.reference,
        dtypes=(dtype,),
    )


@dataclass(frozen=True)
class Entry:
    """One corpus entry: an operator class, the dtype it runs in, and -- for a bug -- the
    checks of THE CONTRACT that must flag it (the first is the one that should: the
    check whose job the mistake is); a correct variant has ``catches == ()``."""

    operator: type[Operator]
    catches: tuple[str, ...] = ()
    dtype: str = "float64"

    @property
    def name(self) -> str:
        return self.operator.name if self.dtype == "float64" else f"{self.operator.name}[{self.dtype}]"

    @property
    def is_bug(self) -> bool:
        return bool(self.catches)

    @property
    def mistake(self) -> str:
        """The one-line comment: what the operator gets wrong (or why it is correct)."""
        return (self.operator.__doc__ or "").strip().splitlines()[0]

    def fresh(self) -> Operator:
        """A new instance: state bugs keep state on the instance, so no two uses share one."""
        return self.operator()

    def mapping(self):
        return mapping(self.fresh(), self.dtype)

    def cases(self, seed: int = 0) -> list:
        return self.fresh().samples(np.random.default_rng(seed), np.dtype(self.dtype))
