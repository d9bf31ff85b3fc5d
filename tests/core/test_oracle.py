"""The oracle: its center is the reference backprop, its radius brackets exactly the
valid subgradients at ReLU kinks, its error scale bounds real rounding, and its
directional derivatives agree with the center."""

import numpy as np
import pytest

from harness.core import oracle, reference
from harness.core.cases import make_case
from harness.core.spec import ACTIVATIONS, SEED_SPEC, NetworkSpec
from harness.core.tolerances import eps
from tests import corpus

SPECS = [NetworkSpec((5, 4, 3), (a, "identity"), loss) for a in ACTIVATIONS for loss in ("cross_entropy", "mse")]
SPECS += [NetworkSpec((7, 6, 5, 3), ("tanh", "sigmoid", "leaky_relu"), "mse")]
KINKED = [NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"),
          NetworkSpec((6, 5, 3), ("leaky_relu", "leaky_relu"), "mse")]


def _expected(case, dtype=None):
    return oracle.expected(case.spec, case.params, case.x, case.y, dtype or case.dtype)


def _pairs(a, b):
    return [(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb)]


def _flat(pairs):
    return [a for pair in pairs for a in pair]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_center_is_the_reference_backprop_and_nothing_is_bracketed_off_the_kinks(spec):
    case = make_case(spec, 6, seed=3)
    exp = _expected(case)
    loss, grads, dx = reference.loss_and_grads(spec, case.params, case.x, case.y, input_grad=True)
    assert exp.loss == loss
    for c, g in _pairs(exp.center, grads):
        np.testing.assert_array_equal(c, g)
    np.testing.assert_array_equal(exp.dx_center, dx)
    assert exp.n_kink_units == 0
    assert all(not r.any() for pair in exp.radius for r in pair) and not exp.dx_radius.any()


@pytest.mark.parametrize("spec", KINKED, ids=lambda s: s.describe())
def test_radius_is_nonzero_exactly_where_a_unit_is_on_its_kink(spec):
    case = make_case(spec, 6, seed=1, on_kinks=True)
    W, b = case.params[0]
    on_kink = case.x @ W.T + b == 0  # exact: on_kinks builds dyadic values
    exp = _expected(case)
    assert exp.n_kink_units == on_kink.sum() > 0
    units = on_kink.any(axis=0)
    assert np.array_equal(exp.radius[0][1] > 0, units)  # the bias of every kinked unit, and only those
    assert np.array_equal((exp.radius[0][0] > 0).any(axis=1), units)
    assert not exp.radius[1][0].any() and not exp.radius[1][1].any()  # the layer above has no kink


@pytest.mark.parametrize("spec", KINKED, ids=lambda s: s.describe())
def test_the_bracket_is_exactly_the_span_of_both_one_sided_conventions(spec):
    case = make_case(spec, 6, seed=1, on_kinks=True)
    exp = _expected(case)
    _, left = corpus.Backprop()(spec, list(case.params), case.x, case.y)  # act'(0) = left slope (relu'(0) = 0)
    _, right = corpus.ReluDerivativeOneAtZero()(spec, list(case.params), case.x, case.y)  # act'(0) = 1
    differs = False
    for (lo_g, hi_g), c, r in zip(_pairs(left, right), _flat(exp.center), _flat(exp.radius)):
        differs |= not np.array_equal(lo_g, hi_g)
        # each kinked unit is one sample's: the bracket is tight, neither wider nor narrower
        np.testing.assert_allclose(c - r, np.minimum(lo_g, hi_g), rtol=0, atol=1e-15)
        np.testing.assert_allclose(c + r, np.maximum(lo_g, hi_g), rtol=0, atol=1e-15)
    assert differs  # the two conventions really give different gradients here


def test_a_preactivation_within_float32_rounding_of_the_kink_is_on_it_in_float32_only():
    spec = NetworkSpec((1, 1, 1), ("relu", "identity"), "mse")
    params = [(np.array([[1.0]]), np.array([-1.0 + 1e-9])), (np.array([[1.0]]), np.array([0.0]))]
    x, y = np.array([[1.0]]), np.array([[3.0]])  # z = 1e-9: 16 eps(float32) * |x||W| + |b| is ~4e-6
    single = oracle.expected(spec, params, x, y, "float32")
    double = oracle.expected(spec, params, x, y, "float64")
    assert single.n_kink_units == 1 and single.radius[0][1][0] > 0
    assert double.n_kink_units == 0 and double.radius[0][1][0] == 0


@pytest.mark.parametrize("spec", SPECS + [SEED_SPEC], ids=lambda s: s.describe())
def test_the_error_scale_bounds_the_error_of_a_float32_computation(spec):
    case = make_case(spec, 16, seed=3).astype("float32")
    exp = _expected(case)
    loss, grads = corpus.Float32Backprop()(spec, list(case.params), case.x, case.y)
    e32, floor = eps("float32"), float(np.finfo(np.float32).smallest_normal)
    for g, c, r, s in zip(_flat(grads), _flat(exp.center), _flat(exp.radius), _flat(exp.scale)):
        excess = np.maximum(np.abs(g.astype(np.float64) - c) - r, 0.0)
        # eps * scale alone covers the error (the tolerance's factor of 16 is margin on top)
        assert np.all(excess <= 2 * e32 * s + floor), float(np.max(excess / (e32 * s + floor)))
    assert abs(float(loss) - exp.loss) <= 2 * e32 * exp.loss_scale


def test_the_error_scale_is_not_vacuous():
    # a float32 answer judged as float64 must fail: scale * eps(float64) is far below its error
    case = make_case(SPECS[0], 16, seed=3)
    exp = _expected(case)
    _, grads = corpus.Float32Inside()(case.spec, list(case.params), case.x, case.y)
    worst = max(float(np.max(np.abs(g - c) / (eps("float64") * s + 1e-300)))
                for g, c, s in zip(_flat(grads), _flat(exp.center), _flat(exp.scale)))
    assert worst > 1e4


def _direction(case, rng):
    return [(rng.standard_normal(W.shape), rng.standard_normal(b.shape)) for W, b in case.params]


def _contract(grads, direction):
    return sum(float((g * d).sum()) for g, d in _pairs(grads, direction))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_directional_derivative_agrees_with_the_center_contracted_with_the_direction(spec):
    case = make_case(spec, 4, seed=5)
    exp = _expected(case)
    rng = np.random.default_rng(1)
    for _ in range(2):
        d = _direction(case, rng)
        dd = oracle.directional_derivative(spec, case.params, case.x, case.y, d)
        assert abs(dd - _contract(exp.center, d)) <= 1e-12 * max(1.0, abs(dd))


def test_directional_derivative_along_one_element_is_that_element_and_linear_in_the_direction():
    spec = SPECS[2]
    case = make_case(spec, 4, seed=6)
    exp = _expected(case)
    unit = [(np.zeros_like(W), np.zeros_like(b)) for W, b in case.params]
    unit[1][0][2, 1] = 1.0
    one = oracle.directional_derivative(spec, case.params, case.x, case.y, unit)
    assert abs(one - exp.center[1][0][2, 1]) <= 1e-14 * max(1.0, abs(one))
    d = _direction(case, np.random.default_rng(2))
    twice = [(2 * dW, 2 * db) for dW, db in d]
    assert oracle.directional_derivative(spec, case.params, case.x, case.y, twice) == pytest.approx(
        2 * oracle.directional_derivative(spec, case.params, case.x, case.y, d), rel=1e-13)


def test_directional_derivative_sees_a_wrong_gradient():
    spec = SPECS[0]
    case = make_case(spec, 4, seed=7)
    _, wrong = corpus.SumInsteadOfMean()(spec, list(case.params), case.x, case.y)
    d = _direction(case, np.random.default_rng(3))
    dd = oracle.directional_derivative(spec, case.params, case.x, case.y, d)
    assert abs(_contract(wrong, d) - dd) > 1e-3 * abs(dd)
