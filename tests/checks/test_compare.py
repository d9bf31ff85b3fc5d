"""The one comparison routine: each element within its own tolerance of its center, or
anywhere inside its bracket where it is non-differentiable; NaN never passes; the
report keeps the worst elements, not the first; and two answers of identical calls are
compared bitwise or within a declared tolerance."""

import numpy as np
import pytest

from harness.checks.compare import (
    WORST_SHOWN,
    compare_elementwise,
    compare_gradients,
    compare_tensors,
    disagreement,
    failing,
)
from harness.core import oracle
from harness.core.cases import make_case
from harness.core.protocol import StepResult
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from harness.core.tolerances import tolerance
from tests import corpus


def _compare(got, center, radius=0.0, scale=1.0, dtype="float64"):
    return compare_elementwise(np.asarray(got, float), np.asarray(center, float), radius, scale, dtype=dtype,
                               comparison="gradient", name="t")


def test_values_within_tolerance_pass_and_just_beyond_fail():
    tol = float(tolerance("float64", "gradient", 1.0))
    assert _compare([1.0 + 0.5 * tol], [1.0]).verdict is Verdict.PASS
    report = _compare([1.0 + 4 * tol], [1.0])
    assert report.verdict is Verdict.FAIL and report.n_failed == 1
    assert report.worst[0].tolerance == tol and report.worst[0].expected == 1.0


def test_each_element_is_judged_on_its_own_scale():
    tol_small = float(tolerance("float64", "gradient", 1e-3))
    # the same absolute error passes for the element of scale 1 and fails for the one of scale 1e-3
    report = _compare([1.0 + 2 * tol_small, 1e-3 + 2 * tol_small], [1.0, 1e-3], scale=np.array([1.0, 1e-3]))
    assert report.n_failed == 1 and report.worst[0].index == (1,)


def test_inside_a_bracket_anything_passes_and_outside_it_fails_naming_the_bracket():
    center, radius = np.array([0.5, 0.5]), np.array([0.5, 0.0])
    inside = _compare([0.0, 0.5], center, radius)  # 0 is the bracket's end: relu'(0) = 0
    assert inside.verdict is Verdict.PASS and inside.n_nondifferentiable == 1
    outside = _compare([1.1, 0.5], center, radius)
    assert outside.verdict is Verdict.FAIL
    assert outside.worst[0].bracket == (0.0, 1.0) and outside.worst[0].index == (0,)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_never_pass_not_even_inside_a_bracket(bad):
    report = _compare([bad, 1.0], [0.5, 1.0], radius=np.array([1e300, 0.0]))
    assert report.verdict is Verdict.FAIL and report.n_failed == 1 and report.worst[0].index == (0,)


def test_the_worst_elements_are_reported_worst_first_not_the_first_ones():
    center = np.zeros((4, 5))
    got = center.copy()
    errors = {(0, 0): 1e-9, (0, 1): 2e-9, (3, 4): 1.0, (2, 2): 0.5, (1, 3): 1e-3, (3, 0): 0.25, (2, 1): 1e-6}
    for index, error in errors.items():
        got[index] = error
    report = _compare(got, center)
    assert report.n_failed == len(errors)
    assert [c.index for c in report.worst] == [(3, 4), (2, 2), (3, 0), (1, 3), (2, 1)]
    assert len(report.worst) == WORST_SHOWN
    assert report.max_abs_error == 1.0


def test_a_passing_report_lists_no_elements():
    assert _compare(np.ones(50), np.ones(50)).worst == []


def test_a_zero_dimensional_loss_is_compared_and_reported():
    report = compare_elementwise(np.float64(2.5), 2.0, 0.0, 1.0, dtype="float64", comparison="loss", name="loss")
    assert report.verdict is Verdict.FAIL and report.n_elements == 1
    assert report.worst[0].index == () and report.worst[0].got == 2.5 and report.max_abs_error == 0.5
    assert compare_elementwise(np.float64(2.0), 2.0, 0.0, 1.0, dtype="float64", comparison="loss",
                               name="loss").verdict is Verdict.PASS


def test_float32_rounding_is_judged_at_float32():
    got = np.array([1.0 + 1e-7])
    assert _compare(got, [1.0], dtype="float32").verdict is Verdict.PASS
    assert _compare(got, [1.0], dtype="float64").verdict is Verdict.FAIL


def test_compare_tensors_names_each_tensor_and_refuses_uneven_lists():
    reports = compare_tensors(["a", "b"], [np.ones(2), np.zeros(2)], [np.ones(2), np.ones(2)], [0.0, 0.0], [1.0, 1.0],
                              dtype="float64", comparison="gradient")
    assert [(r.name, r.verdict) for r in reports] == [("a", Verdict.PASS), ("b", Verdict.FAIL)]
    assert [r.name for r in failing(reports)] == ["b"]
    with pytest.raises(ValueError):
        compare_tensors(["a"], [np.ones(2), np.ones(2)], [np.ones(2)], [0.0], [1.0], dtype="float64", comparison="gradient")


# --- gradients against the oracle ---------------------------------------------------------

KINKS = make_case(NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), 6, seed=1, on_kinks=True)


def _grads(impl, case=KINKS):
    return impl(case.spec, list(case.params), case.x, case.y)[1]


def test_gradients_are_judged_against_the_oracle_with_its_brackets():
    exp = oracle.expected(KINKS.spec, KINKS.params, KINKS.x, KINKS.y)
    for right in (corpus.Backprop(), corpus.ReluDerivativeOneAtZero()):  # either side of the kink
        assert not failing(compare_gradients(_grads(right), exp, dtype="float64"))
    wrong = failing(compare_gradients(_grads(corpus.BiasGradFirstSampleOnly()), exp, dtype="float64"))
    assert [t.name for t in wrong] == ["layer 0 b", "layer 1 b"]


def test_against_another_answer_the_brackets_widen_by_the_radius_factor():
    exp = oracle.expected(KINKS.spec, KINKS.params, KINKS.x, KINKS.y)
    left, right = _grads(corpus.Backprop()), _grads(corpus.ReluDerivativeOneAtZero())
    # the two conventions are a whole bracket apart: within twice the radius of each other
    assert failing(compare_gradients(left, exp, dtype="float64", comparison="property", center=right, radius_factor=1.0))
    assert not failing(compare_gradients(left, exp, dtype="float64", comparison="property", center=right, radius_factor=2.0))


# --- two answers of identical calls ---------------------------------------------------------


def _result(loss=1.0, scale=1.0):
    return StepResult(np.float64(loss), [(scale * np.ones((2, 3)), np.ones(2))])


def test_identical_answers_agree_bitwise():
    assert disagreement(_result(), _result(), 0.0) is None
    nan = StepResult(np.float64(np.nan), [(np.ones((2, 3)), np.ones(2))])
    assert disagreement(nan, nan, 0.0) is None  # NaN in the same place is the same answer


def test_one_ulp_breaks_bitwise_agreement_and_says_by_how_much():
    why = disagreement(_result(), _result(scale=1.0 + 2**-52), 0.0)
    assert why == "gradient 0 differs: max abs difference 2.22e-16 (expected bitwise equal)"


def test_a_declared_nondeterminism_is_the_allowed_relative_difference():
    assert disagreement(_result(), _result(scale=1.0 + 1e-6), 1e-4) is None
    assert disagreement(_result(), _result(scale=1.01), 1e-4) == "gradient 0 differs beyond the declared nondeterminism 0.0001"


def test_the_loss_and_shapes_are_compared_too():
    assert disagreement(_result(), _result(loss=2.0), 0.0).startswith("loss differs")
    reshaped = StepResult(np.float64(1.0), [(np.ones((3, 2)), np.ones(2))])
    assert disagreement(_result(), reshaped, 0.0) == "gradient 0 changed shape from (2, 3) to (3, 2)"
