"""The value checks: the loss, every gradient element and dL/dx against the oracle, at
the precision asked for; any subgradient at a kink, no other; and failures that name
the tensor, the element and the likely mistake."""

import numpy as np
import pytest

from harness.checks.runner import run_check
from harness.checks.trial import Trial
from harness.checks.values import check_gradients_match_reference, check_input_gradient, check_loss_matches_reference
from harness.core.protocol import Capabilities, as_implementation
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from tests import corpus


def _case(spec=corpus.RELU, **kw):
    return corpus.Entry(None, corpus._c(spec, **kw), ()).case()


def _run(check, impl, case=None):
    return run_check(check, Trial(as_implementation(impl), case if case is not None else _case()))


# --- loss_matches_reference -----------------------------------------------------------------


def test_a_summed_loss_is_caught_naming_got_expected_and_the_batch_size():
    result = _run(check_loss_matches_reference, corpus.LossSummedNotAveraged())
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("loss=8.631834") and "but should be 1.438639" in result.message
    assert "(abs error 7.19 > tolerance " in result.message
    assert result.hint == "off by a constant factor 6 — the batch size? (a sum where a mean belongs)"


@pytest.mark.parametrize("impl, dtype", [(corpus.Backprop(), "float64"), (corpus.Float32Backprop(), "float32")], ids=["float64", "float32"])
def test_a_right_loss_passes_in_its_dtype(impl, dtype):
    case = corpus.Entry(None, corpus._c(corpus.SIGMOID_MSE), (), dtype=dtype).case()
    result = _run(check_loss_matches_reference, impl, case)
    assert result.verdict is Verdict.PASS and result.message.startswith("abs error ")


# --- gradients_match_reference ----------------------------------------------------------------


def test_float32_rounding_passes_in_float32_and_fails_in_float64():
    # the same float32 computation is right when float32 was asked for ...
    right = corpus.Entry(corpus.Float32Backprop("f32"), corpus._c(corpus.DEEP_TANH), (), dtype="float32")
    assert _run(check_gradients_match_reference, right.impl, right.case()).verdict is Verdict.PASS
    # ... and wrong when it hides inside float64 arrays
    result = _run(check_gradients_match_reference, corpus.Float32Inside(), _case(corpus.DEEP_TANH))
    assert result.verdict is Verdict.FAIL
    assert "float32 rounding" in result.hint


def test_a_float32_answer_to_a_float64_request_is_judged_at_float32():
    # its dtype is gradient_dtypes' failure; its values are right for what it is
    assert _run(check_gradients_match_reference, corpus.ReturnsFloat32()).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "bug, words",
    [
        (corpus.SumInsteadOfMean(), "6 — the batch size?"),
        (corpus.MeanTakenTwice(), "1/6 — the batch size?"),
        (corpus.SignFlipped(), "sign flipped"),
        (corpus.BiasGradZero(), "only the bias gradients are wrong"),
        (corpus.ReluDerivativeIsActivation(), "confined to layer 0"),
    ],
    ids=["sum", "mean-twice", "sign", "bias-zero", "relu-derivative"],
)
def test_hints_name_the_pattern(bug, words):
    result = _run(check_gradients_match_reference, bug)
    assert result.verdict is Verdict.FAIL and words in result.hint


def test_a_failure_counts_the_wrong_elements_and_names_their_tensors():
    result = _run(check_gradients_match_reference, corpus.BiasGradFirstSampleOnly())
    assert result.message == "8 of 53 gradient elements outside tolerance in layer 0 b, layer 1 b"
    assert [t.name for t in result.tensors if t.verdict is Verdict.FAIL] == ["layer 0 b", "layer 1 b"]
    assert result.repro.startswith("backprop-harness check --impl tests.corpus:BiasGradFirstSampleOnly --sizes 6,5,3")


def test_transposed_square_weight_gradient_is_named():
    class Transposed(corpus.Backprop):  # a transposition that square layers' shapes cannot show
        def weight_grad(self, delta, a_prev):
            g = delta.T @ a_prev
            return g.T if g.shape[0] == g.shape[1] else g

    result = _run(check_gradients_match_reference, Transposed(), _case(corpus.SQUARE))
    assert result.verdict is Verdict.FAIL and "layer 0 W equals the transpose" in result.hint


@pytest.mark.parametrize("layer", [0, 1])
def test_single_wrong_element_in_seed_size_weights_is_found_and_named(layer):
    bug = corpus.SingleElementOff(layer=layer)
    case = corpus.Entry(bug, {}, ()).seed_case(batch=64)
    result = _run(check_gradients_match_reference, bug, case)
    assert result.verdict is Verdict.FAIL
    failing = [t for t in result.tensors if t.verdict is Verdict.FAIL]
    assert [t.name for t in failing] == [f"layer {layer} W"]
    assert failing[0].n_failed == 1 and failing[0].worst[0].index == bug.index(case.params[layer][0].shape)
    assert "a single element is wrong" in result.hint


def test_wrong_shapes_are_left_to_gradient_shapes():
    result = _run(check_gradients_match_reference, corpus.WeightGradTransposed())
    assert result.verdict is Verdict.SKIP and "see gradient_shapes" in result.message


def test_wrong_slope_on_one_side_of_the_kink_fails_but_either_convention_passes():
    case = _case(on_kinks=True)
    assert Trial(as_implementation(corpus.Backprop()), case).expected.n_kink_units > 0
    for good in (corpus.Backprop(), corpus.ReluDerivativeOneAtZero()):
        result = _run(check_gradients_match_reference, good, case)
        assert result.verdict is Verdict.PASS, result.describe()
        assert sum(t.n_nondifferentiable for t in result.tensors) > 0
        assert "non-differentiable elements judged by their bracket" in result.message

    class HalfSlopeAtZero(corpus.Backprop):  # relu'(0) = 0.5 is inside [0, 1]: still valid
        def activation_derivative(self, name, z, a):
            if name == "relu":
                return np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0))
            return super().activation_derivative(name, z, a)

    class NegativeSideSlope(corpus.Backprop):  # relu'(z) = 0.1 for z <= 0: wrong left slope
        def activation_derivative(self, name, z, a):
            return np.where(z > 0, 1.0, 0.1) if name == "relu" else super().activation_derivative(name, z, a)

    assert _run(check_gradients_match_reference, HalfSlopeAtZero(), case).verdict is Verdict.PASS
    assert _run(check_gradients_match_reference, NegativeSideSlope(), case).verdict is Verdict.FAIL


def test_a_leaky_relu_that_forgets_its_left_slope_fails_even_at_the_kink():
    case = _case(corpus.LEAKY, on_kinks=True)
    assert _run(check_gradients_match_reference, corpus.Backprop(), case).verdict is Verdict.PASS
    result = _run(check_gradients_match_reference, corpus.LeakyReluLeftSlopeZero(), case)
    assert result.verdict is Verdict.FAIL and "layer 0" in result.message


# --- input_gradient ------------------------------------------------------------------------------


def test_input_gradient_is_skipped_unless_declared():
    result = _run(check_input_gradient, corpus.Backprop())
    assert result.verdict is Verdict.SKIP and result.message == "the implementation does not declare input_grad"


def test_a_right_input_gradient_passes():
    assert _run(check_input_gradient, corpus.WithInputGradient(), _case(corpus.DEEP_TANH)).verdict is Verdict.PASS


def test_an_input_gradient_divided_by_the_batch_once_more_is_caught_with_the_batch_size():
    result = _run(check_input_gradient, corpus.InputGradientDividedByBatch())
    assert result.verdict is Verdict.FAIL and result.message == "36 of 36 elements of dx outside tolerance"
    assert result.hint == "off by a constant factor 1/6 — the batch size? (divided by N twice)"
    assert result.tensors[0].name == "x"


class _DeclaresInputGrad(corpus.Backprop):
    capabilities = Capabilities(dtypes={"float64"}, input_grad=True)


class NoInputGradient(_DeclaresInputGrad):
    """Declares input_grad but returns only (loss, grads)."""


class InputGradientTransposed(_DeclaresInputGrad):
    input_grad = True

    def input_gradient(self, delta):
        return delta.T


def test_a_declared_input_gradient_that_is_missing_fails():
    result = _run(check_input_gradient, NoInputGradient())
    assert result.verdict is Verdict.FAIL and result.message == "input_grad is declared, but the step returned no dx"


def test_a_misshapen_input_gradient_fails_naming_both_shapes():
    result = _run(check_input_gradient, InputGradientTransposed(), _case(batch=4))
    assert result.verdict is Verdict.FAIL and result.message == "dx has shape (6, 4), expected (4, 6)"


# --- a tolerance never makes a wrong answer pass --------------------------------------------------------------


class Layer0Zero(corpus.Backprop):
    """Never computes the first layer's gradients: zeros there, right elsewhere."""

    dtypes = ("float32", "float64")

    def finish(self, loss, grads, dtype):
        return loss, [(np.zeros_like(grads[0][0]), np.zeros_like(grads[0][1])), *grads[1:]]


@pytest.mark.parametrize("dtype, scale", [("float32", 1e6), ("float64", 1e15), ("float64", 1e300)],
                         ids=["float32-1e6", "float64-1e15", "float64-1e300"])
def test_huge_logits_never_let_an_all_zero_layer_pass(dtype, scale):
    from harness.core.cases import make_case

    case = make_case(corpus.RELU, 6, dtype, seed=1, logit_scale=scale)
    with np.errstate(all="ignore"):
        result = _run(check_gradients_match_reference, Layer0Zero(), case)
    assert result.verdict in (Verdict.INCONCLUSIVE, Verdict.FAIL), result.describe()
    layer0 = [t for t in result.tensors if t.name.startswith("layer 0")]
    assert all(t.verdict is not Verdict.PASS for t in layer0)
    if result.verdict is Verdict.INCONCLUSIVE:
        assert f"cannot be judged in {dtype}" in result.message


def test_the_same_bug_fails_at_an_ordinary_scale():
    from harness.core.cases import make_case

    result = _run(check_gradients_match_reference, Layer0Zero(), make_case(corpus.RELU, 6, "float32", seed=1, logit_scale=10.0))
    assert result.verdict is Verdict.FAIL and "the wrong gradients are all zero" in result.hint


def test_a_loss_the_dtype_cannot_judge_is_inconclusive():
    from harness.core.cases import make_case

    case = make_case(corpus.RELU, 6, "float64", seed=1, logit_scale=1e300)
    with np.errstate(all="ignore"):
        result = _run(check_loss_matches_reference, lambda spec, params, x, y: (0.0, corpus.Backprop()(spec, params, x, y)[1]),
                      case)
    assert result.verdict in (Verdict.INCONCLUSIVE, Verdict.FAIL) and result.verdict is not Verdict.PASS


# --- tolerances grow with the length of every sum ------------------------------------------------------------


NARROW_MSE = NetworkSpec((3, 4, 2), ("tanh", "identity"), "mse")
NARROW_CE = NetworkSpec((3, 4, 2), ("relu", "identity"), "cross_entropy")


def _large(batch, spec=NARROW_MSE, dtype="float64", shift=10.0):
    """A narrow network at ``batch``, MSE targets offset by ``shift``: every output error has
    one sign, so the bias gradients are sums of terms of one sign (the worst case for
    rounding, measured at 49 eps times their sum of |terms| at a batch of 60,000)."""
    from harness.core.cases import Case, make_case

    case = make_case(spec, batch, dtype, seed=0)
    if spec.loss == "cross_entropy":
        return case
    return Case(case.spec, case.params, case.x, (case.y + shift).astype(dtype), case.seed)


VALUE_CHECKS_OF_ONE_STEP = ("loss_matches_reference", "gradients_match_reference", "gradient_probes")


def _value_verdicts(impl, case):
    from harness import run_checks
    from harness.checks import ALL_CHECKS, check_name

    checks = [c for c in ALL_CHECKS if check_name(c) in VALUE_CHECKS_OF_ONE_STEP]
    return {r.check: r for r in run_checks(impl, case, checks=checks)}


@pytest.mark.parametrize("batch", [1, 100_000])
@pytest.mark.parametrize("impl", ["numpy", corpus.Backprop(), "torch"], ids=["numpy", "corpus", "torch"])
def test_correct_implementations_pass_at_batch_1_and_at_100000(impl, batch):
    if impl == "torch":
        pytest.importorskip("torch")
    for dtype in ("float64", "float32") if isinstance(impl, str) else ("float64",):
        for case in (_large(batch, dtype=dtype), _large(batch, NARROW_CE, dtype=dtype)):
            for result in _value_verdicts(impl, case).values():
                assert result.verdict is Verdict.PASS, result.describe()


def test_pure_python_passes_at_batch_100000():
    for result in _value_verdicts("pure-python", _large(100_000)).values():
        assert result.verdict is Verdict.PASS, result.describe()


class OneInAMillion(corpus.Backprop):
    def finish(self, loss, grads, dtype):
        return loss * (1 + 1e-6), [(W * (1 + 1e-6), b * (1 + 1e-6)) for W, b in grads]


@pytest.mark.parametrize("bug", [corpus.Float32Inside(), OneInAMillion()], ids=["float32-rounding", "1e-6-relative"])
def test_float64_answers_a_little_wrong_still_fail_at_batch_100000(bug):
    results = _value_verdicts(bug, _large(100_000))
    assert results["gradients_match_reference"].verdict is Verdict.FAIL
    assert results["loss_matches_reference"].verdict is Verdict.FAIL
