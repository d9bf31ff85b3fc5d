"""A JAX function as a mapping under test: the forward runs in JAX (float64 for the
oracle, complex where JAX allows it), the backward is ``jax.vjp``, the JVP
``jax.jvp`` and the backward of the backward ``jax.vjp`` of the backward.

JAX computes in float32 unless 64-bit mode is on, and a float64 oracle needs it:
``jax_mapping`` turns on ``jax_enable_x64`` for the process (float32 inputs still
compute in float32). Integer inputs are closed over, so they get no gradient.
"""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Mapping, NotOffered


def jax_mapping(fn, inputs=(), params=None, samples=None, reference=None, dtypes=("float32", "float64"),
                name=None, nondeterminism=0.0) -> Mapping:
    """A ``harness.Mapping`` for a JAX function ``fn(*arrays, **params)``; ``reference``,
    if given, is called like ``fn`` (in float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    label = name or getattr(fn, "__name__", "jax function")
    fn = _jitted(fn)
    reference = _jitted(reference) if reference is not None else None
    mapping = Mapping(
        name=label,
        forward=_numpy_forward(fn),
        vjp=_numpy_vjp(fn),
        jvp=_numpy_jvp(fn),
        inputs=inputs,
        params=params,
        samples=samples,
        reference=_numpy_forward(reference) if reference is not None else None,
        dtypes=dtypes,
        nondeterminism=nondeterminism,
    )
    mapping.second_order = lambda n_inputs: _second_order(fn, label, mapping.dtypes, n_inputs)
    return mapping


def _is_float(a) -> bool:
    dtype = getattr(a, "dtype", None)
    return np.dtype(dtype if dtype is not None else np.asarray(a).dtype).kind in "fc"


def _jitted(fn):
    """``fn`` compiled once per set of static params (and per shape, by jax.jit): JAX's
    dispatch per operation would otherwise dominate the oracle's thousands of calls."""
    import functools

    import jax

    cache = {}

    def call(*arrays, **params):
        key = repr(sorted(params.items()))
        if key not in cache:
            cache[key] = jax.jit(functools.partial(fn, **params))
        return cache[key](*arrays)

    return call


def _closed(fn, arrays, params):
    """``fn`` as a function of its float arguments alone (the others closed over), and those."""
    import jax.numpy as jnp

    arrays = [jnp.asarray(np.asarray(a)) for a in arrays]
    which = [i for i, a in enumerate(arrays) if _is_float(a)]

    def of_floats(*floats):
        args = list(arrays)
        for i, f in zip(which, floats):
            args[i] = f
        return fn(*args, **params)

    return of_floats, [arrays[i] for i in which], which


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _numpy_forward(fn):
    import jax.numpy as jnp

    def forward(*arrays, **params):
        out = fn(*[jnp.asarray(np.asarray(a)) for a in arrays], **params)
        outs = tuple(np.array(o) for o in _as_tuple(out))
        return outs if isinstance(out, (tuple, list)) else outs[0]

    return forward


def _cotangent(output, c):
    """A cotangent JAX accepts: the given one, or float0 zeros for an integer output."""
    import jax

    if c is None or not _is_float(output):
        return np.zeros(np.shape(output), dtype=jax.dtypes.float0)
    return np.asarray(c)


def _numpy_vjp(fn):
    import jax

    def vjp(inputs, cotangents, **params):
        of_floats, floats, which = _closed(fn, inputs, params)
        out, pullback = jax.vjp(of_floats, *floats)
        outs = _as_tuple(out)
        cots = tuple(_cotangent(o, c) for o, c in zip(outs, cotangents))
        grads = pullback(cots if isinstance(out, (tuple, list)) else cots[0])
        result = [None] * len(inputs)
        for i, g in zip(which, grads):
            result[i] = np.array(g)
        return tuple(result)

    return vjp


def _numpy_jvp(fn):
    import jax

    def jvp(inputs, tangents, **params):
        of_floats, floats, which = _closed(fn, inputs, params)
        try:
            out, tangent = jax.jvp(of_floats, tuple(floats), tuple(np.asarray(tangents[i]) for i in which))
        except TypeError as exc:
            if "custom_vjp" in str(exc) or "forward-mode" in str(exc):
                raise NotOffered(str(exc).splitlines()[0]) from exc
            raise
        pairs = zip(_as_tuple(out), _as_tuple(tangent))
        result = tuple(np.array(t) if _is_float(o) else None for o, t in pairs)
        return result if isinstance(out, (tuple, list)) else result[0]

    return jvp


def _second_order(fn, label, dtypes, n_inputs: int) -> Mapping:
    """The map (inputs..., cotangents...) -> VJP, whose own VJP is JAX's VJP of it."""
    import jax

    def first_order(inputs, cotangents, params):
        of_floats, floats, which = _closed(fn, inputs, params)

        def grads(*args):
            primals, cots = args[: len(floats)], args[len(floats):]
            out, pullback = jax.vjp(of_floats, *primals)
            outs = _as_tuple(out)
            it = iter(cots)
            full = tuple(next(it) if _is_float(o) else _cotangent(o, None) for o in outs)
            return pullback(full if isinstance(out, (tuple, list)) else full[0])

        return grads, floats, which

    def forward(*arrays, **params):
        inputs, cots = arrays[:n_inputs], arrays[n_inputs:]
        grads, floats, _ = first_order(inputs, cots, params)
        return tuple(np.array(g) for g in grads(*floats, *[np.asarray(c) for c in cots]))

    def vjp(arrays, cotangents, **params):
        inputs, cots = arrays[:n_inputs], arrays[n_inputs:]
        grads, floats, which = first_order(inputs, cots, params)
        try:
            _, pullback = jax.vjp(grads, *floats, *[np.asarray(c) for c in cots])
        except Exception as exc:  # a custom_vjp without a differentiable backward
            raise NotOffered(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        second = pullback(tuple(np.asarray(c) for c in cotangents if c is not None))
        result = [None] * n_inputs
        for i, g in zip(which, second[: len(floats)]):
            result[i] = np.array(g)
        return tuple(result) + tuple(np.array(g) for g in second[len(floats):])

    return Mapping(f"{label} (backward of the backward)", forward, vjp, samples=lambda rng, dtype: [], dtypes=dtypes)
