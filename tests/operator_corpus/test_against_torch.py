"""The corpus is trustworthy before any engine exists: every correct operator, and every
correct variant, agrees with torch's float64 autograd (forward, VJP, and JVP where the
operator has one) on each of its adversarial samples; each float32 variant is as accurate
as torch's own float32 computation.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.operator_corpus.entries import CORRECT, OPERATORS
from tests.operator_corpus.evidence import cotangent_for, outputs
from tests.operator_corpus.operator import Entry, as_dtype
from tests.operator_corpus.torch_reference import torch_forward_and_vjp, torch_jvp

torch = pytest.importorskip("torch")

FLOAT64 = [e for e in CORRECT if e.dtype == "float64"]
FLOAT32 = [e for e in CORRECT if e.dtype == "float32"]
EPS32 = float(np.finfo(np.float32).eps)


def close(got, want, scale, what):
    """Per element |got - want| <= 1e-10 |want| + 1e-12 scale: float64 rounding of two
    different formulas (``scale`` bounds what rounding can touch: the cotangent for a VJP)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    bad = ~(np.abs(got - want) <= 1e-10 * np.abs(want) + 1e-12 * scale)  # nan is bad
    assert not bad.any(), f"{what}: {int(bad.sum())} elements differ, worst {np.abs(got - want).max():.3e}"


def vjp_scale(cotangents, xs):
    """What float64 rounding of a VJP is measured against: the cotangent times the inputs' size."""
    return max(np.abs(c).max(initial=1.0) for c in cotangents) * max(1.0, max(
        np.abs(np.asarray(x, np.float64)).max(initial=1.0) for x in xs))


@pytest.mark.parametrize("entry", FLOAT64, ids=lambda e: e.name)
def test_correct_float64_entry_matches_torch_autograd(entry: Entry):
    operator = entry.fresh()
    for xs, params, label in entry.cases():
        y = outputs(operator.forward(*xs, **params))
        cts = cotangent_for(y)
        want_y, want_vjp = torch_forward_and_vjp(entry.operator, xs, params, cts[0])
        close(y[0], want_y, np.abs(want_y).max(initial=1.0), f"{entry.name} forward on {label}")
        got_vjp = operator.vjp(tuple(xs), cts, **params)
        scale = vjp_scale(cts, xs)
        for i, (g, w) in enumerate(zip(got_vjp, want_vjp)):
            if w is None:
                assert g is None, f"{entry.name} on {label}: input {i} is an integer input"
            else:
                close(g, w, scale, f"{entry.name} VJP of input {i} on {label}")


@pytest.mark.parametrize("operator", [op for op in OPERATORS if op.jvp is not None], ids=lambda op: op.name)
def test_jvp_matches_torch_forward_mode(operator):
    rng = np.random.default_rng(3)
    for xs, params, label in Entry(operator).cases():
        tangents = tuple(None if np.issubdtype(x.dtype, np.integer) else rng.standard_normal(x.shape) for x in xs)
        (got,) = operator().jvp(tuple(xs), tangents, **params)
        want = torch_jvp(operator, xs, params, tangents)
        close(got, want, vjp_scale([np.ones(1)], xs) * max(np.abs(t).max() for t in tangents if t is not None),
              f"{operator.name} JVP on {label}")


@pytest.mark.parametrize("entry", FLOAT32, ids=lambda e: e.name)
def test_float32_variant_is_as_accurate_as_torch_float32(entry: Entry):
    """A float32 variant's forward and VJP stay within a few times torch float32's own error
    (both measured against torch float64): correct float32 code, not a float64 bug in disguise."""
    operator = entry.fresh()
    for xs, params, label in entry.cases():
        y = outputs(operator.forward(*xs, **params))
        assert y[0].dtype == np.float32, f"{entry.name} forward returns {y[0].dtype} on {label}"
        cts = cotangent_for(y)
        grads = operator.vjp(tuple(xs), cts, **params)
        y64, vjp64 = torch_forward_and_vjp(entry.operator, as_dtype(xs, np.float64), params, cts[0].astype(np.float64))
        y32, vjp32 = torch_forward_and_vjp(entry.operator, xs, params, cts[0], dtype="float32")
        for got, mine_name, want, theirs in [(y[0], "forward", y64, y32)] + [
                (g, f"VJP of input {i}", w64, w32) for i, (g, w64, w32) in enumerate(zip(grads, vjp64, vjp32))
                if w64 is not None]:
            assert got.dtype == np.float32, f"{entry.name} {mine_name} is {got.dtype} on {label}"
            mine = np.abs(got.astype(np.float64) - want).max(initial=0.0)
            torch_error = np.abs(theirs.astype(np.float64) - want).max(initial=0.0)
            floor = EPS32 * np.abs(want).max(initial=0.0)
            assert mine <= 8 * max(torch_error, floor), (
                f"{entry.name} {mine_name} on {label}: error {mine:.2e}, torch float32's {torch_error:.2e}")
