"""Hints: the pattern of a failure named in plain words (a constant factor, zeros, a
transpose, one element, one tensor, a kind of tensor, the layers it entered), and
nothing said where there is no pattern."""

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.hints import gradient_hint, nonfinite_hint, property_hint, ratio_hint
from harness.core.results import TensorReport, Verdict
from harness.core.spec import NetworkSpec

BATCH, WIDTH = 8, 3


@pytest.mark.parametrize(
    "ratio, words",
    [
        (-1.0, "every value has its sign flipped (ratio -1)"),
        (8.0, "off by a constant factor 8 — the batch size? (a sum where a mean belongs)"),
        (1 / 8, "off by a constant factor 1/8 — the batch size? (divided by N twice)"),
        (2.0, "off by a constant factor 2 — a factor 2 from the square's derivative counted twice?"),
        (0.5, "off by a constant factor 1/2 — the 2 of d(x^2)/dx forgotten?"),
        (3.0, "off by a constant factor 3 — the output width? (a mean over the batch only"),
        (1.37, "off by a constant factor 1.37"),
    ],
)
def test_ratio_hint_names_the_constant(ratio, words):
    assert ratio_hint(np.full(6, ratio), BATCH, WIDTH).startswith(words)


def test_ratio_hint_names_the_constant_despite_rounding_and_nonfinite_ratios():
    ratios = np.array([8.0 * (1 + 1e-5), 8.0 * (1 - 1e-5), 8.0, np.nan, np.inf])
    assert "the batch size?" in ratio_hint(ratios, BATCH)


@pytest.mark.parametrize(
    "ratios",
    [np.ones(4), np.array([1.0, 2.0, 3.0]), np.array([np.nan, np.inf]), np.zeros(3), np.array([])],
    ids=["right", "no-constant", "nothing-finite", "zero", "empty"],
)
def test_ratio_hint_says_nothing_without_a_constant_factor(ratios):
    assert ratio_hint(ratios, BATCH, WIDTH) == ""


def test_the_batch_size_wins_over_the_output_width_and_no_width_means_no_width_guess():
    assert "the batch size?" in ratio_hint(np.full(3, 8.0), 8, 8)
    assert ratio_hint(np.full(3, 3.0), BATCH) == "off by a constant factor 3"


# --- gradient_hint ------------------------------------------------------------------------

NAMES = ["layer 0 W", "layer 0 b", "layer 1 W", "layer 1 b", "layer 2 W", "layer 2 b"]
EXPECTED = [np.random.default_rng(i).normal(size=s) for i, s in enumerate([(4, 4), (4,), (3, 4), (3,), (2, 3), (2,)])]


def _hint(got, float32_sized=False):
    """gradient_hint for ``got`` against EXPECTED, a tensor failing where any element differs."""
    reports = []
    for name, g, e in zip(NAMES, got, EXPECTED):
        wrong = int(np.sum(g != e))
        reports.append(TensorReport(name, Verdict.FAIL if wrong else Verdict.PASS, n_elements=g.size, n_failed=wrong))
    return gradient_hint(reports, got, EXPECTED, BATCH, WIDTH, float32_sized=float32_sized)


def _changed(**tensors):
    """EXPECTED with some tensors (by index, ``t0`` .. ``t5``) replaced by a function of themselves."""
    return [tensors[f"t{i}"](e.copy()) if f"t{i}" in tensors else e.copy() for i, e in enumerate(EXPECTED)]


def test_nothing_is_said_when_nothing_failed():
    assert _hint(_changed()) == ""


def test_all_zero_wrong_gradients_are_named():
    assert _hint([np.zeros_like(e) for e in EXPECTED]).startswith("the wrong gradients are all zero")


def test_a_transposed_square_weight_gradient_is_named():
    hint = _hint(_changed(t0=lambda W: W.T))
    assert "layer 0 W equals the transpose of the expected gradient" in hint and "only layer 0 W is wrong" in hint


def test_a_single_wrong_element_is_named_with_its_tensor():
    def one(W):
        W[1, 2] *= 1.1
        return W

    assert _hint(_changed(t2=one)) == "a single element is wrong, in layer 1 W"


def test_one_wrong_tensor_is_named():
    assert _hint(_changed(t3=lambda b: b + 0.5)) == "only layer 1 b is wrong"


def test_only_biases_and_only_weights_are_named():
    assert "only the bias gradients are wrong" in _hint(_changed(t1=lambda b: b + 1, t3=lambda b: b + 1, t5=lambda b: b + 1))
    assert "only the weight gradients are wrong" in _hint(_changed(t0=lambda W: W + 1, t2=lambda W: W + 1))


def test_errors_confined_to_one_layer_are_named():
    assert "the error is confined to layer 2" in _hint(_changed(t4=lambda W: W + 1, t5=lambda b: b + 1))


def test_a_last_layer_right_and_earlier_ones_wrong_is_an_error_entering_on_the_way_back():
    hint = _hint(_changed(t0=lambda W: 2 * W, t1=lambda b: 2 * b, t2=lambda W: 2 * W, t3=lambda b: 2 * b))
    assert "off by a constant factor 2" in hint
    assert "the last layer is right, earlier ones wrong: the error enters while propagating backwards" in hint


def test_a_constant_factor_across_failing_tensors_is_named():
    assert _hint([-e for e in EXPECTED]).startswith("every value has its sign flipped")
    assert _hint([BATCH * e for e in EXPECTED]).startswith("off by a constant factor 8 — the batch size?")


def test_float32_sized_errors_are_named_when_the_caller_says_so():
    got = [e * (1 + 1e-7) for e in EXPECTED]
    assert "the size of float32 rounding" in _hint(got, float32_sized=True)
    assert "float32" not in _hint(got, float32_sized=False)


# --- nonfinite and property hints -----------------------------------------------------------


def test_nonfinite_hint_blames_softmax_overflow_for_cross_entropy_in_the_cases_dtype():
    case = make_case(NetworkSpec((3, 2), ("identity",), "cross_entropy"), 2, "float32")
    assert nonfinite_hint(case) == "softmax of large logits overflows in float32: subtract the row max before exp (log-sum-exp)"
    mse = make_case(NetworkSpec((3, 2), ("identity",), "mse"), 2)
    assert "overflow or a division by zero" in nonfinite_hint(mse)


@pytest.mark.parametrize(
    "name, words",
    [
        ("batch_gradient_is_mean_of_samples", "the batch reduction is not a mean"),
        ("batch_permutation_invariant", "depends on the order of the batch"),
        ("batch_duplication_invariant", "changes when the batch is repeated"),
        ("gradients_match_reference", ""),
    ],
)
def test_property_hint_names_the_likely_mistake_of_each_property(name, words):
    hint = property_hint(name, [])
    assert words in hint and (hint == "") == (words == "")


def test_a_ratio_that_is_both_the_batch_size_and_two_names_both():
    hint = ratio_hint(np.array([2.0]), 2)
    assert "the batch size?" in hint and "square's derivative" in hint
