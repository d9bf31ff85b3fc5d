"""The float64 oracle for any mapping, from its forward alone: every element of J^T c
with brackets at kinks and ties, probes of any size, the forward and J u."""

import numpy as np
import pytest

from harness.core.directional import Differentiator
from harness.core.mapping_oracle import (
    expected_forward,
    expected_jvp,
    expected_vjp,
    perturbed,
    refine_jvp,
    vjp_sensitivity,
)
from harness.mappings import examples

rng = np.random.default_rng(0)


def test_every_element_of_the_vjp_matches_the_analytic_one():
    a, b, c = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    d = Differentiator(examples.matmul_forward, [a, b], {})
    e = expected_vjp(d, (c,))
    da, db = examples.matmul_vjp((a, b), (c,))
    assert np.max(np.abs(e.center[0] - da)) < 1e-13 and np.max(np.abs(e.center[1] - db)) < 1e-13
    assert e.n_nondifferentiable == 0 and e.n_unresolved == 0 and np.all(e.scale[0] >= np.abs(da))


def test_relu_at_its_kink_gets_the_bracket_of_its_one_sided_derivatives():
    x = np.array([[0.0, 1.0, -1.0]])
    c = np.array([[2.0, 3.0, 5.0]])
    e = expected_vjp(Differentiator(examples.relu_forward, [x], {}), (c,))
    lo, hi = e.center[0] - e.radius[0], e.center[0] + e.radius[0]
    assert lo[0, 0] == pytest.approx(0, abs=1e-9) and hi[0, 0] == pytest.approx(2, abs=1e-9)  # c * [0, 1]
    assert e.radius[0][0, 1] == 0 and e.center[0][0, 1] == pytest.approx(3) and e.center[0][0, 2] == 0


def test_overlapping_max_pool_windows_with_ties_add_their_own_brackets():
    # windows (0,1) tie, (1,2) max at 1, (2,3) max at 3, (3,4) tie, (4,5) max at 4
    x = np.array([1.0, 1.0, 0.5, 2.0, 2.0, 0.0])
    c = np.array([1.0, -1.0, 0.3, 0.7, -2.0])
    e = expected_vjp(Differentiator(lambda v: np.maximum(v[:-1], v[1:]), [x], {}), (c,))
    lo, hi = e.center[0] - e.radius[0], e.center[0] + e.radius[0]
    np.testing.assert_allclose(lo, [0, -1, 0, 0.3, -2, 0], atol=1e-9)
    np.testing.assert_allclose(hi, [1, 0, 0, 1.0, -1.3, 0], atol=1e-9)
    # torch's convention (first of the tie, in every window) lies inside; routing to both does too
    # here, element by element: only a joint condition (the probes) can tell


def test_rounding_sensitivity_is_measured_where_asked():
    x = 1000 + rng.normal(size=(2, 6))  # layer norm of data with a large offset: ill-conditioned

    def layer_norm(v):
        xc = v - v.mean(-1, keepdims=True)
        return xc / np.sqrt((xc * xc).mean(-1, keepdims=True))

    c = rng.normal(size=(2, 6))
    d = Differentiator(layer_norm, [x], {})
    e = expected_vjp(d, (c,))
    vjp_sensitivity(d, (c,), e, [np.array([0, 5])], "float32", 0)
    sens = e.sensitivity[0].ravel()
    assert sens[0] > 100 * e.scale[0].ravel()[0] and sens[1] == 0  # large where measured; not measured elsewhere


def test_perturbed_moves_floats_by_their_rounding_only():
    x, i = np.ones(1000), np.arange(3)
    moved, same = perturbed([x, i], "float32", 0)
    assert np.max(np.abs(moved - 1)) == pytest.approx(4 * np.finfo(np.float32).eps) and same is i


def test_the_forward_and_the_jvp_with_their_sensitivity():
    x = rng.normal(size=(3, 4))
    y, sens = expected_forward(examples.softmax_reference, [x.astype(np.float32)], {}, "float32", 0)
    assert np.max(np.abs(y[0] - examples.softmax_forward(x.astype(np.float32).astype(np.float64)))) < 1e-15
    assert sens[0].shape == (3, 4) and np.all(np.isfinite(sens[0]))
    t = rng.normal(size=(3, 4))
    d = Differentiator(examples.softmax_forward, [x], {})
    e = expected_jvp(d, (t,))
    truth = examples.softmax_jvp((x,), (t,))[0]
    assert np.max(np.abs(e.center[0] - truth)) <= 4 * np.max(e.error[0]) + 1e-12
    refine_jvp(d, (t,), e, [np.array([0, 7])], "float64", 0)
    assert np.max(np.abs(e.center[0] - truth)) < 1e-9 and e.radius[0].max() == 0
