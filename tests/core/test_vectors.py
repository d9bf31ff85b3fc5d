import math

import numpy as np

from harness.core.vectors import COMPLEX_H, complex_point, inner, largest, random_signs, signed, spread_of, uniform_unit


def test_random_signs_are_fair_bits():
    signs = random_signs(np.random.default_rng(0), (1000, 10))
    assert signs.shape == (1000, 10) and abs(signs.mean() - 0.5) < 0.02


def test_signed_gives_the_scale_with_the_bits_of_random_signs():
    scale = np.linspace(1.0, 2.0, 999).reshape(27, 37)
    flipped = signed(np.random.default_rng(3), scale)
    bits = random_signs(np.random.default_rng(3), scale.shape)
    assert flipped.dtype == np.float64 and np.array_equal(flipped, np.where(bits, -scale, scale))


def test_uniform_unit_has_unit_variance_and_bounded_values():
    x = uniform_unit(np.random.default_rng(0), (200_000,))
    assert abs(x.mean()) < 0.01 and abs(x.var() - 1.0) < 0.01
    assert np.abs(x).max() <= math.sqrt(3.0)
    assert uniform_unit(np.random.default_rng(0), (3,), "float32").dtype == np.float32


def test_inner_and_largest_in_float64_past_non_finite_values():
    a = np.arange(5, dtype=np.float32)
    assert inner(a, a) == 30.0
    assert largest(np.array([1.0, -7.0, np.inf, np.nan])) == 7.0
    assert largest(np.array([np.nan])) == 0.0 and largest(np.zeros(0)) == 0.0


def test_spread_of_matches_std_and_survives_a_large_offset():
    x = np.random.default_rng(1).normal(size=10_000)
    assert math.isclose(spread_of(x), float(np.std(x)), rel_tol=1e-9)
    offset = 1e6 + 1e-3 * x  # the two-pass formula would cancel: np.std is taken instead
    assert math.isclose(spread_of(offset), float(np.std(offset)), rel_tol=1e-9)
    assert spread_of(np.zeros(0)) == 0.0


def test_complex_point_is_x_plus_shift_w_plus_i_h_w():
    x, w = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    z = complex_point(x, w, 0.25)
    assert np.array_equal(z.real, x + 0.25 * w) and np.array_equal(z.imag, COMPLEX_H * w)
    assert np.array_equal(complex_point(x, w, 0.0).real, x)


def test_signs_on_a_constant_scale_are_the_same_values_in_a_pass_less():
    for seed, c in ((0, 0.7), (1, 3.0e-5), (2, 1.0)):
        scale = np.full((300, 7), c)
        general = signed(np.random.default_rng(seed), scale)
        fast = signed(np.random.default_rng(seed), scale, constant=c)
        assert np.array_equal(general, fast) and set(np.unique(fast)) == {-c, c}
