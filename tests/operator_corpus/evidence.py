"""Proof, with no engine, that each bug really is one: for every check a corpus entry
names, the sample cases on which the entry visibly breaks what that check checks.

This is no checker: it cheats by knowing the right answer. Values are compared with the
entry's *correct* operator run in float64 (``reference_class``), which the engine never
sees; contracts (mutation, state, shapes, dtypes, finiteness, integer inputs) are read off
directly. It exists so that no entry in the corpus is secretly correct, and no correct
variant secretly breaks a contract, before the engine that must find them exists.
"""

from __future__ import annotations

import numpy as np

from tests.operator_corpus.operator import Entry, as_dtype

VALUE_CHECKS = ("vjp_matches_oracle", "vjp_probes")
CONTRACT_CHECKS = ("outputs_are_finite", "gradient_shapes", "gradient_dtypes", "inputs_not_mutated",
                   "deterministic", "no_state_between_calls", "no_gradient_for_integer_inputs")

# A bug must differ from the float64 truth by more than its dtype's rounding could:
# per element |got - want| > RELATIVE * |want| + ABSOLUTE * max|want| of that input.
DIFFERENCE = {"float64": (1e-9, 1e-12), "float32": (1e-5, 1e-6)}


def outputs(y):
    return y if isinstance(y, tuple) else (y,)


def is_int(x):
    return np.issubdtype(np.asarray(x).dtype, np.integer)


def cotangent_for(y, seed=1):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(np.shape(o)).astype(np.asarray(o).dtype) for o in outputs(y))


def run(operator, xs, params, cotangents):
    """forward and VJP on copies, so that neither call sees what the other did to its inputs."""
    with np.errstate(all="ignore"):
        y = operator.forward(*[np.array(x) for x in xs], **params)
        grads = operator.vjp(tuple(np.array(x) for x in xs), tuple(np.array(c) for c in cotangents), **params)
    return outputs(y), tuple(grads)


def differs(got, want, dtype) -> bool:
    """Whether ``got`` (run in ``dtype``) is visibly not ``want`` (float64 truth)."""
    if got is None or np.shape(got) != np.shape(want):
        return True
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if not np.isfinite(got).all():
        return bool(np.isfinite(want).all())
    rel, absolute = DIFFERENCE[dtype]
    scale = np.abs(want).max(initial=0.0)
    return bool((np.abs(got - want) > rel * np.abs(want) + absolute * scale).any())


def same(a, b) -> bool:
    """Whether two ``run`` results (outputs, gradients) are identical, bit for bit."""
    a, b = a[0] + a[1], b[0] + b[1]
    return len(a) == len(b) and all(
        x is None and y is None or (x is not None and y is not None and np.shape(x) == np.shape(y)
                                    and np.array_equal(x, y, equal_nan=True)) for x, y in zip(a, b))


def copies(xs):
    return [np.array(x) for x in xs]


def value_evidence(entry: Entry, cases) -> dict[str, list[str]]:
    """Forward against the correct operator's, and VJP against the correct float64 VJP."""
    found = {"forward_matches_reference": [], "vjp": []}
    truth = entry.operator.reference_class()
    for xs, params, label in cases:
        xs64 = as_dtype(xs, np.float64)
        y64 = outputs(truth.forward(*xs64, **params))
        cts = tuple(c.astype(entry.dtype) for c in cotangent_for(y64))
        want = truth.vjp(xs64, as_dtype(cts, np.float64), **params)
        try:
            y, grads = run(entry.fresh(), xs, params, cts)
        except Exception:  # noqa: BLE001 -- a backward that raises is wrong too
            found["vjp"].append(label)
            continue
        if len(y) != len(y64) or any(differs(a, b, entry.dtype) for a, b in zip(y, y64)):
            found["forward_matches_reference"].append(label)
        if len(grads) != len(want) or any(w is not None and differs(g, w, entry.dtype) for g, w in zip(grads, want)):
            found["vjp"].append(label)
    return found


def contract_evidence(entry: Entry, cases) -> dict[str, list[str]]:
    found = {name: [] for name in CONTRACT_CHECKS}
    for xs, params, label in cases:
        xs_given = copies(xs)
        with np.errstate(all="ignore"):
            y = entry.fresh().forward(*copies(xs), **params)
            cts = cotangent_for(y)
            cts_given = tuple(copies(cts))
            operator = entry.fresh()
            y = operator.forward(*xs_given, **params)
            try:
                grads = operator.vjp(tuple(xs_given), cts_given, **params)
            except Exception:  # noqa: BLE001 -- the values' evidence counts a raising backward
                continue
        if any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(xs_given + list(cts_given), list(xs) + list(cts))):
            found["inputs_not_mutated"].append(label)
        if any(not np.isfinite(o).all() for o in outputs(y)) or any(
                g is not None and not is_int(g) and not np.isfinite(g).all() for g in grads):
            found["outputs_are_finite"].append(label)
        for x, g in zip(xs, grads):
            if is_int(x):
                if g is not None:
                    found["no_gradient_for_integer_inputs"].append(label)
            elif g is None or np.shape(g) != np.shape(x):
                found["gradient_shapes"].append(label)
            elif np.asarray(g).dtype != np.asarray(x).dtype:
                found["gradient_dtypes"].append(label)
        if len(grads) != len(xs):
            found["gradient_shapes"].append(label)
        twice = entry.fresh()
        if not same(run(twice, xs, params, cts), run(twice, xs, params, cts)):
            found["deterministic"].append(label)
    runnable = [case for case in cases if runs(entry, case)]
    if len(runnable) > 1:  # A, B, A on one instance
        (a, pa, label), (b, pb, _) = runnable[:2]
        with np.errstate(all="ignore"):
            cts_a = cotangent_for(entry.fresh().forward(*copies(a), **pa))
            cts_b = cotangent_for(entry.fresh().forward(*copies(b), **pb))
        operator = entry.fresh()
        first = run(operator, a, pa, cts_a)
        run(operator, b, pb, cts_b)
        if not same(first, run(operator, a, pa, cts_a)):
            found["no_state_between_calls"].append(label)
    return found


def runs(entry, case) -> bool:
    xs, params, _ = case
    try:
        with np.errstate(all="ignore"):
            run(entry.fresh(), xs, params, cotangent_for(entry.fresh().forward(*copies(xs), **params)))
    except Exception:  # noqa: BLE001 -- a case the backward raises on
        return False
    return True


def tangents_for(xs, seed=2):
    rng = np.random.default_rng(seed)
    return tuple(None if is_int(x) else rng.standard_normal(np.shape(x)) for x in xs)


def jvp_evidence(entry: Entry, cases) -> dict[str, list[str]]:
    """JVP against the correct float64 JVP, and against the entry's own VJP by the transpose
    identity <u, VJP(v)> = <JVP(u), v> (no oracle needed: the two must agree to rounding)."""
    found = {"jvp_matches_oracle": [], "jvp_vjp_transpose": []}
    if entry.operator.jvp is None:
        return found
    truth = entry.operator.reference_class()
    for xs, params, label in cases:
        xs64 = as_dtype(xs, np.float64)
        u = tangents_for(xs64)
        try:
            with np.errstate(all="ignore"):
                got = entry.fresh().jvp(xs64, u, **params)
                v = cotangent_for(got)
                grads = entry.fresh().vjp(xs64, v, **params)
        except Exception:  # noqa: BLE001 -- the VJP's evidence covers a raising backward
            continue
        if any(differs(g, w, "float64") for g, w in zip(got, truth.jvp(xs64, u, **params))):
            found["jvp_matches_oracle"].append(label)
        try:
            left = sum(float(np.vdot(a, g)) for a, g in zip(u, grads) if a is not None)
        except ValueError:  # a gradient of the wrong shape: the identity cannot even be written
            found["jvp_vjp_transpose"].append(label)
            continue
        right = sum(float(np.vdot(t, c)) for t, c in zip(got, v))
        if not abs(left - right) <= 1e-10 * (abs(left) + abs(right) + 1e-3):
            found["jvp_vjp_transpose"].append(label)
    return found


def evidence(entry: Entry, seed: int = 0) -> dict[str, list[str]]:
    """Check name -> labels of the sample cases on which ``entry`` breaks it. ``vjp_matches_oracle``
    and ``vjp_probes`` share one list: the VJP is not the correct one (the two checks differ in
    how they look, not in what they look for). ``second_order`` is not covered: a NumPy mapping
    has no framework to differentiate its VJP."""
    cases = entry.cases(seed)
    values = value_evidence(entry, cases)
    found = contract_evidence(entry, cases)
    found["forward_matches_reference"] = values["forward_matches_reference"]
    for name in VALUE_CHECKS:
        found[name] = values["vjp"]
    found.update(jvp_evidence(entry, cases))
    return found
