"""Tolerances as data keyed by dtype and comparison: ``factor * eps * scale`` plus an
underflow floor, each element judged on its own error scale, never on the array's size."""

import math

import numpy as np
import pytest

from harness.core.tolerances import (
    FACTORS,
    REUSE_ROUNDINGS,
    coarser,
    eps,
    factor,
    mapping_scale,
    reuse_allowance,
    sensitivity_step,
    tolerance,
)

COMPARISONS = ("loss", "gradient", "probe", "kink", "property", "forward", "transpose")


def test_every_comparison_has_a_factor_in_both_dtypes_and_nothing_else():
    assert set(FACTORS) == {(d, c) for d in ("float32", "float64") for c in COMPARISONS}
    for (dtype, comparison), value in FACTORS.items():
        assert factor(dtype, comparison) == value
        assert factor(np.dtype(dtype), comparison) == value  # dtype objects are keys too
    # properties compare two rounded answers with each other: twice the single factor
    for dtype in ("float32", "float64"):
        assert factor(dtype, "property") == 2 * factor(dtype, "gradient")
        assert factor(dtype, "transpose") == 2 * factor(dtype, "gradient")  # two rounded answers, likewise


@pytest.mark.parametrize("dtype, comparison", [("float16", "gradient"), ("float64", "hessian")])
def test_an_unknown_dtype_or_comparison_is_an_error_naming_both(dtype, comparison):
    with pytest.raises(ValueError, match=f"dtype='{dtype}', comparison='{comparison}'"):
        factor(dtype, comparison)


def test_eps_is_the_dtypes_machine_epsilon():
    assert eps("float64") == 2.0**-52 and eps("float32") == 2.0**-23


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tolerance_is_factor_times_eps_times_scale_plus_an_underflow_floor(dtype):
    scale = np.array([0.0, 1.0, 3.5, 1e6])
    f, tiny = factor(dtype, "gradient"), float(np.finfo(dtype).smallest_normal)
    got = tolerance(dtype, "gradient", scale)
    np.testing.assert_array_equal(got, f * eps(dtype) * scale + f * tiny)
    assert got[0] == f * tiny > 0  # a zero scale still allows a flush to zero
    assert math.isclose(tolerance(dtype, "loss", 2.0), factor(dtype, "loss") * (eps(dtype) * 2.0 + tiny))  # a scalar


def test_the_underflow_floor_cannot_hide_an_error_worth_the_name():
    assert tolerance("float32", "gradient", 0.0) < 1e-36
    assert tolerance("float64", "gradient", 0.0) < 1e-305


def test_each_element_is_judged_on_its_own_scale_not_on_the_array_size():
    one = tolerance("float64", "gradient", np.array([2.0]))[0]
    # Neither many other elements nor much larger ones change this element's tolerance
    # (a tolerance scaled by the array's size or norm would loosen as arrays grow).
    crowded = tolerance("float64", "gradient", np.full(100_000, 2.0))
    beside_giants = tolerance("float64", "gradient", np.array([2.0, 1e12, 1e12]))
    assert crowded[0] == one and crowded[-1] == one and beside_giants[0] == one
    # and it is linear in the element's own scale
    small, large = tolerance("float64", "gradient", np.array([1.0, 1000.0]))
    assert math.isclose(large, 1000 * small, rel_tol=1e-12)


def _sum_in(dtype, values):
    """A length-k sum taken in ``dtype``; its error scale is sum(|terms|)."""
    return float(np.sum(values.astype(dtype), dtype=dtype))


def test_float32_rounding_passes_in_float32_and_fails_as_a_float64_answer():
    values = np.random.default_rng(0).normal(0.0, 1.0, 4096).astype(np.float32)
    exact = math.fsum(values.astype(np.float64))
    scale = float(np.abs(values.astype(np.float64)).sum())
    error = abs(_sum_in(np.float32, values) - exact)
    assert error > 0  # the float32 sum did round
    assert error <= tolerance("float32", "gradient", scale)  # right, when float32 was asked for
    # The same error in a float64 answer is 2**29 times its tolerance's eps: caught.
    assert error > tolerance("float64", "gradient", scale)
    assert abs(_sum_in(np.float64, values) - exact) <= tolerance("float64", "gradient", scale)


def test_a_one_in_a_million_error_fails_in_float64_and_passes_in_float32():
    # the derivation in the module: 1e-6 relative is ~10**8 over float64's tolerance
    scale = 1.0
    assert 1e-6 > 1e7 * tolerance("float64", "gradient", scale)
    assert 1e-6 < tolerance("float32", "gradient", scale)


@pytest.mark.parametrize("a, b", [("float32", "float64"), ("float64", "float32"), (np.float32, "float32")])
def test_coarser_is_the_less_precise_dtype_in_either_order(a, b):
    assert coarser(a, b) == "float32"


def test_coarser_of_one_dtype_is_that_dtype():
    assert coarser("float64", np.dtype("float64")) == "float64"


def test_a_mapping_elements_scale_adds_its_sensitivity_and_its_tensors_largest_scale():
    scale = mapping_scale(np.array([1.0, 0.0, 3.0]), np.array([0.0, 2.0, 0.0]))
    np.testing.assert_array_equal(scale, [4.0, 5.0, 6.0])  # own + sensitivity + the tensor's largest (3)
    assert mapping_scale(np.array([1.0, np.inf]))[0] == 2.0  # a non-finite element sets no floor
    # the floor is the tensor's largest scale, never its size
    assert mapping_scale(np.full(100_000, 2.0))[0] == mapping_scale(np.array([2.0]))[0] == 4.0


def test_the_sensitivity_step_is_the_dtypes_rounding_or_what_richardson_resolves():
    assert sensitivity_step("float32") == 4 * eps("float32")
    assert sensitivity_step("float64") == 1e-8


def test_the_allowance_for_reused_outputs_follows_the_derivation():
    # tanh, computed from its rounded output as 1 - y^2: |D2| dy / |D| = 2 |y| * R eps |y|
    x = np.array([0.5, 17.0])
    y, d1 = np.tanh(x), 1 - np.tanh(x) ** 2
    d2 = -2 * y * d1
    allowance = reuse_allowance(d1, d2, y, "float64")
    assert np.allclose(allowance, 2 * REUSE_ROUNDINGS * eps("float64") * y**2)
    assert allowance[1] < d1[1]  # tanh'(17) = 6.8e-15 is still judged in float64
    assert reuse_allowance(np.ones(2), np.zeros(2), np.ones(2), "float32").tolist() == [0.0, 0.0]  # linear: none
    # at a stationary point (D = 0) the output must move by sqrt(2 dy / D2): the sqrt branch
    at_top = reuse_allowance(np.zeros(1), np.ones(1), np.ones(1), "float32")
    assert np.isclose(at_top[0], np.sqrt(2 * REUSE_ROUNDINGS * eps("float32")))
    # float32 sigmoid at 17: s (1 - s) rounds to 0, which the allowance covers
    s = 1 / (1 + np.exp(-17.0))
    assert reuse_allowance(s * (1 - s), s * (1 - s) * (1 - 2 * s), s, "float32") > s * (1 - s)
