"""The one comparison routine: each element within its own tolerance of its center, or
anywhere inside its bracket where it is non-differentiable; NaN never passes; the
report keeps the worst elements, not the first; and two answers of identical calls are
compared bitwise or within a declared tolerance."""

import math

import numpy as np
import pytest

from harness.checks.compare import (
    WORST_SHOWN,
    agreement,
    compare_elementwise,
    compare_gradients,
    compare_tensors,
    failing,
    overall,
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


def _result(loss=1.0, scale=1.0, bias=1.0):
    return StepResult(np.float64(loss), [(scale * np.ones((2, 3)), bias * np.ones(2))])


# the oracle's error scales for _result's answer: every element of scale 1
UNIT = oracle.Expected(1.0, 1.0, [(np.ones((2, 3)), np.ones(2))], [(np.zeros((2, 3)), np.zeros(2))],
                       [(np.ones((2, 3)), np.ones(2))], np.zeros(0), np.zeros(0), np.zeros(0), 0)


def _agree(a, b, rel=0.0, strict=False, dtype="float64"):
    return agreement(a, b, UNIT, dtype=dtype, nondeterminism=rel, strict=strict)


def test_identical_answers_agree_bitwise():
    assert _agree(_result(), _result()).kind == "identical"
    nan = StepResult(np.float64(np.nan), [(np.ones((2, 3)), np.ones(2))])
    assert _agree(nan, nan).kind == "identical"  # NaN in the same place is the same answer


def test_a_difference_within_rounding_agrees_and_says_how_large_it_was():
    one_ulp = _agree(_result(), _result(scale=1.0 + 2**-52))
    assert one_ulp.kind == "rounding" and one_ulp.agrees
    assert one_ulp.why == "largest difference 2.22e-16 in layer 0 W, 0.062 of the float64 rounding tolerance"


def test_strict_determinism_demands_bitwise_equality():
    strict = _agree(_result(), _result(scale=1.0 + 2**-52), strict=True)
    assert strict.kind == "differ" and not strict.agrees
    assert strict.why == "layer 0 W differs: max abs difference 2.22e-16 (bitwise equality demanded)"


def test_a_difference_beyond_rounding_disagrees_naming_the_tensor_and_the_ratio():
    beyond = _agree(_result(), _result(bias=1.0 + 1e-12))
    assert beyond.kind == "differ"
    assert beyond.why.startswith("layer 0 b differs by up to 1e-12, ") and "times the float64 rounding tolerance" in beyond.why
    assert beyond.relative == pytest.approx(1e-12, rel=1e-3) and beyond.spread > 1
    # the same difference is rounding in float32
    assert _agree(_result(), _result(bias=1.0 + 1e-12), dtype="float32").kind == "rounding"


def test_a_declared_nondeterminism_is_the_allowed_relative_difference():
    assert _agree(_result(), _result(scale=1.0 + 1e-6), 1e-4).kind == "declared"
    beyond = _agree(_result(), _result(scale=1.01), 1e-4)
    assert beyond.kind == "differ" and beyond.why.endswith("and beyond the declared nondeterminism 0.0001")


def test_the_loss_and_shapes_are_compared_too():
    assert _agree(_result(), _result(loss=2.0)).why.startswith("loss differs")
    reshaped = StepResult(np.float64(1.0), [(np.ones((3, 2)), np.ones(2))])
    assert _agree(_result(), reshaped).why == "layer 0 W changed shape from (2, 3) to (3, 2)"


def test_answers_are_not_said_to_agree_where_no_tolerance_can_judge():
    huge = oracle.Expected(1.0, 1.0, UNIT.center, UNIT.radius, [(np.full((2, 3), 1e20), np.ones(2))],
                           np.zeros(0), np.zeros(0), np.zeros(0), 0)
    zeroed = agreement(_result(), _result(scale=0.0), huge, dtype="float64")
    assert zeroed.kind == "unjudged" and "cannot be judged in float64" in zeroed.why


# --- what cannot be judged ------------------------------------------------------------------


@pytest.mark.parametrize("scale", [np.inf, np.nan, 1e20], ids=["infinite", "nan", "beyond-the-magnitude"])
def test_a_tolerance_that_cannot_tell_right_from_wrong_is_inconclusive_never_a_pass(scale):
    # a zero answer where 1 is expected: any tolerance >= 1 would pass it
    report = _compare([0.0, 0.5], [1.0, 0.5], scale=np.array([scale, 1.0]))
    assert report.verdict is Verdict.INCONCLUSIVE and report.n_unjudged == 1 and report.n_failed == 0
    assert "cannot be judged in float64" in report.message
    assert report.worst[0].index == (0,)


def test_a_wrong_element_elsewhere_still_fails_the_tensor():
    report = _compare([0.0, 0.0], [1.0, 0.5], scale=np.array([1e20, 1e-3]))
    assert report.verdict is Verdict.FAIL and report.n_failed == 1 and report.n_unjudged == 1
    assert overall([report]) is Verdict.FAIL
    assert overall([_compare([1.0], [1.0]), _compare([0.0], [1.0], scale=np.inf)]) is Verdict.INCONCLUSIVE


def test_an_answer_outside_even_a_loose_tolerance_fails_and_nan_never_hides_under_an_infinite_one():
    assert _compare([1e25], [1.0], scale=1e20).verdict is Verdict.FAIL
    assert _compare([np.nan], [1.0], scale=np.inf).verdict is Verdict.FAIL


def test_an_all_zero_tensor_expected_to_be_zero_is_judged():
    # nothing to lose there: the tolerance is tiny, and a non-zero answer fails
    assert _compare([0.0, 0.0], [0.0, 0.0]).verdict is Verdict.PASS
    assert _compare([1e-3, 0.0], [0.0, 0.0]).verdict is Verdict.FAIL


def test_a_first_answer_of_zeros_then_a_nonzero_one_differs_instead_of_raising():
    # CI's derandomized conformance run met it: an implementation keeping state answered a
    # zero bias gradient, then a nonzero one; the relative difference divided by zero and
    # the check's ZeroDivisionError became the implementation's ERROR
    zeros_first = _agree(_result(bias=0.0), _result(bias=1.0))
    assert zeros_first.kind == "differ" and not zeros_first.agrees
    assert zeros_first.relative == math.inf


@pytest.mark.parametrize("size", [2**20, 10**6 + 7])
def test_the_largest_entries_of_a_large_array_are_found_by_blocks_exactly(size):
    # a million-element rank (mostly zeros, equal values, the largest ones crowded into
    # one block and one in the partial block at the end): the same values as argpartition
    from harness.checks.compare import _largest

    rng = np.random.default_rng(3)
    rank = np.where(rng.random(size) < 0.4, rng.random(size), 0.0)
    rank[5000:5004] = 7.0 + np.arange(4)  # four of the five in one block
    rank[-1] = 20.0  # the partial block's (or the last block's) last entry
    rank[rng.integers(0, size, 50)] = 3.0  # ties below them
    for count in (1, WORST_SHOWN, 40):
        got = _largest(rank, count)
        assert len(got) == count == len(set(got.tolist()))
        assert sorted(rank[got]) == sorted(np.sort(rank)[-count:])


def test_the_worst_elements_of_a_million_are_reported_worst_first():
    got, center = np.zeros(10**6), np.zeros(10**6)
    got[[17, 400_000, 999_999]] = [1e-3, 3e-3, 2e-3]  # far beyond float64's tolerance
    report = _compare(got, center)
    assert report.verdict is Verdict.FAIL and report.n_failed == 3
    assert [c.index for c in report.worst][:3] == [(400_000,), (999_999,), (17,)]
