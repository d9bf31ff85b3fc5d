"""The class every NumPy operator of the built-in provider is written as.

An ``Operator`` is a forward, a VJP (and a JVP where it is cheap) in plain NumPy, the
inputs the engine may draw, and ``samples``: hand-made cases that expose the mistakes
people make (ties, repeated indices, stride < kernel, padding, non-square weights,
inputs exactly on kinks, large magnitudes, width 1, a single sample). Each correct
operator is declared ``class Relu(Elementwise, correct=True)``; a subclass that changes
one thing (a bug in the tests' corpus, or another valid convention) keeps the correct
class's forward as its ``reference``.

Calling conventions (THE CONTRACT in the README): ``forward(*inputs, **params)`` returns
an array in the inputs' dtype; ``vjp(inputs, cotangents, **params)`` returns a tuple with
one entry per input (``None`` for integer inputs); ``jvp(inputs, tangents, **params)``
returns a tuple of output tangents. ``cotangents`` may be given as a tuple (one per
output) or, for a single output, as the bare array: ``single`` accepts both.
"""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Input, Mapping

In = Input  # how the engine may draw one input (shape, kind, low, high, kinks, ties)

# What ``ndarray.sum`` and ``ndarray.max`` run, without their Python wrappers, and looked
# up once (a ufunc's attribute is a dictionary lookup per call): the MLP's operators
# reduce with these, a small step being mostly such overheads. Same loops, same results.
add_reduce = np.add.reduce
maximum_reduce = np.maximum.reduce


def single(cotangents):
    """The one cotangent of a single-output mapping, given bare or as a 1-tuple. (The
    MLP's operators unpack a chain step's 1-tuple inline first: a call per node is a
    measurable part of a small step.)"""
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
    inputs: tuple[Input, ...] = ()
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


def as_mapping(operator: Operator, dtypes=("float64",), samples=None, reference=None, params=None) -> Mapping:
    """``operator`` as a ``harness.Mapping`` running in ``dtypes``; ``samples`` replaces the
    operator's own sample cases, ``reference`` its float64 forward, ``params`` its defaults."""
    correct = operator.reference_class() if hasattr(operator, "reference_class") else None
    return Mapping(
        operator.name,
        operator.forward,
        vjp=operator.vjp,
        jvp=operator.jvp,
        inputs=operator.inputs,
        params=dict(operator.params if params is None else params),
        samples=samples or operator.samples,
        reference=reference or operator.reference,
        dtypes=(dtypes,) if isinstance(dtypes, str) else tuple(dtypes),
        # the correct operator's declaration: a bug is judged by what its record allows
        vjp_terms=getattr(correct, "vjp_terms", None),
        jvp_terms=getattr(correct, "jvp_terms", None),
    )
