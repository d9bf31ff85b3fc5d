"""Second derivatives of any forward along a direction: resolved where the forward is
smooth, zero across a kink and where the direction moves nothing, bounded by the noise
where the differences cannot resolve them."""

import numpy as np

from harness.core.curvature import curvature
from harness.core.directional import Differentiator


def test_the_complex_step_gives_first_and_second_derivatives_of_a_saturated_tanh():
    x = np.array([0.3, -1.2, 17.0])
    d = Differentiator(np.tanh, [x], {})
    assert d.complex_ok
    first, second = curvature(d, [np.ones(3)])
    sech2 = 1 / np.cosh(x) ** 2  # not 1 - tanh^2: that loses every digit at 17
    assert np.allclose(first[0], sech2, rtol=1e-12, atol=0)
    assert np.allclose(second[0], -2 * np.tanh(x) * sech2, rtol=1e-6, atol=0)  # also at 17, where tanh' = 7e-15


def test_differences_of_the_forward_resolve_a_smooth_non_analytic_forward():
    x = np.array([0.5, -2.0])
    d = Differentiator(lambda v: np.abs(v) ** 3, [x], {})  # np.abs: no complex step
    assert not d.complex_ok
    first, second = curvature(d, [np.ones(2)])
    assert np.allclose(first[0], 3 * x * np.abs(x), rtol=1e-6)
    assert np.allclose(second[0], 6 * np.abs(x), rtol=1e-5)


def test_a_kink_within_the_steps_gives_no_curvature_and_an_unmoved_output_none():
    x = np.array([0.0, 1.0])
    d = Differentiator(lambda v: np.maximum(v, 0), [x], {})
    first, second = curvature(d, [np.array([1.0, 0.0])])  # moves element 0 (on the kink) only
    assert second[0][0] == 0 and second[0][1] == 0 and first[0][1] == 0


def test_a_curvature_below_the_differences_noise_is_bounded_by_that_noise():
    x = np.array([25.0])  # logistic'' ~ 1e-11: far below what differences of the forward resolve
    d = Differentiator(lambda v: np.where(v >= 0, 1 / (1 + np.exp(-np.abs(v))), 0.0), [x], {})
    _, second = curvature(d, [np.ones(1)])
    assert second[0][0] > 1e-11  # the noise's bound, not 0: the allowance it feeds can only widen
