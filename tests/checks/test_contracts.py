"""The contract checks catch the realistic bugs of the corpus, and purpose-built ones,
with a message that names what is wrong, and pass correct code."""

import re

import numpy as np
import pytest

from harness.checks.contracts import (
    CONTRACT_CHECKS,
    check_deterministic,
    check_gradient_dtypes,
    check_gradient_shapes,
    check_inputs_not_mutated,
    check_no_state_between_calls,
    check_outputs_are_finite,
)
from harness.checks.runner import run_check
from harness.checks.trial import Trial
from harness.core.cases import make_case
from harness.core.protocol import Capabilities, FunctionImplementation, as_implementation
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from tests import corpus

CASE = make_case(corpus.RELU, 6, seed=1)


def _run(check, impl, case=CASE):
    return run_check(check, Trial(as_implementation(impl), case))


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("impl", [corpus.Backprop(), corpus.ReluDerivativeOneAtZero(), "pure-python"],
                         ids=["Backprop", "ReluDerivativeOneAtZero", "pure-python"])
def test_correct_code_passes_every_contract(check, impl):
    from harness.core.registry import resolve

    result = run_check(check, Trial(resolve(impl), make_case(corpus.DEEP_TANH, 5, seed=2)))
    assert result.verdict is Verdict.PASS, result.describe()


# --- outputs_are_finite ---------------------------------------------------------------------


def test_a_softmax_that_overflows_is_caught_with_the_log_sum_exp_hint():
    case = make_case(corpus.RELU, 6, seed=1, logit_scale=1000.0)
    with np.errstate(all="ignore"):
        result = _run(check_outputs_are_finite, corpus.UnstableSoftmax(), case)
    assert result.verdict is Verdict.FAIL
    assert result.message == "loss is nan, expected a finite number"
    assert "subtract the row max before exp" in result.hint


class LossPerSample(corpus.Backprop):
    """Returns the per-sample losses: the .mean() forgotten."""

    def loss_and_delta(self, spec, out, y):
        _, delta = super().loss_and_delta(spec, out, y)
        p = self.softmax(out)
        return -np.log(p[np.arange(len(y)), y]), delta


def test_a_loss_that_is_not_a_scalar_is_caught():
    result = _run(check_outputs_are_finite, LossPerSample())
    assert result.verdict is Verdict.FAIL and result.message == "loss has shape (6,), expected a scalar"


class InfiniteWeightGradient(corpus.Backprop):
    def finish(self, loss, grads, dtype):
        dW = grads[1][0].copy()
        dW[0, :2] = [np.inf, np.nan]
        return loss, [grads[0], (dW, grads[1][1])]


def test_non_finite_gradient_elements_are_counted_per_tensor():
    result = _run(check_outputs_are_finite, InfiniteWeightGradient())
    assert result.verdict is Verdict.FAIL and result.message == "layer 1 W has 2 non-finite elements"


# --- gradient_shapes and gradient_dtypes --------------------------------------------------------


def test_a_transposed_weight_gradient_is_caught_with_a_transpose_hint():
    result = _run(check_gradient_shapes, corpus.WeightGradTransposed())
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("layer 0 W has shape (6, 5), expected (5, 6)")
    assert "transposed?" in result.hint


def test_a_bias_gradient_with_keepdims_is_caught_without_a_transpose_hint():
    result = _run(check_gradient_shapes, corpus.BiasGradKeepdims())
    assert result.verdict is Verdict.FAIL and "layer 0 b has shape (1, 5), expected (5,)" in result.message
    assert result.hint == ""


class LastLayerForgotten(corpus.Backprop):
    def finish(self, loss, grads, dtype):
        return loss, grads[:-1]


def test_a_missing_layer_is_caught_counting_the_pairs():
    result = _run(check_gradient_shapes, LastLayerForgotten())
    assert result.verdict is Verdict.FAIL
    assert result.message == "1 gradient pairs, expected 2 (one (dW, db) per layer)"


def test_float32_gradients_for_a_float64_request_are_a_dtype_failure():
    result = _run(check_gradient_dtypes, corpus.ReturnsFloat32())
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("layer 0 W is float32;") and result.message.endswith("expected float64 (the dtype of the inputs)")
    assert _run(check_gradient_dtypes, corpus.Float32Inside()).verdict is Verdict.PASS  # float32 inside, float64 out


# --- inputs_not_mutated ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "bug, words",
    [
        (corpus.UpdatesParametersInPlace(), "param layer 0 W (30 elements changed), param layer 0 b (5 elements changed)"),
        (corpus.NormalisesInputsInPlace(), "x (36 elements changed)"),
    ],
    ids=["parameters", "inputs"],
)
def test_a_step_that_changes_its_inputs_is_caught_naming_them(bug, words):
    result = _run(check_inputs_not_mutated, bug)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith("inputs modified by the step: ") and words in result.message
    assert "copy before updating in place" in result.hint


class SortsLabelsInPlace(corpus.Backprop):
    def __call__(self, spec, params, x, y):
        y.sort()  # a "faster" one-hot, on the caller's labels
        return super().__call__(spec, params, x, y)


def test_labels_sorted_in_place_are_caught():
    result = _run(check_inputs_not_mutated, SortsLabelsInPlace())
    assert result.verdict is Verdict.FAIL and "inputs modified by the step: y (" in result.message


# --- deterministic ----------------------------------------------------------------------------


def test_unseeded_noise_is_caught_and_a_declared_nondeterminism_is_honoured():
    noisy = corpus.NoisyGradients()
    strict = _run(check_deterministic, noisy)
    assert strict.verdict is Verdict.FAIL
    assert re.match(r"two identical calls disagree: layer [01] W differs by up to .*, .* times the float64 rounding tolerance$",
                    strict.message)
    assert "declare Capabilities(nondeterminism=...)" in strict.hint
    impl = FunctionImplementation(noisy, "noisy-declared")
    impl.capabilities = Capabilities(nondeterminism=1e-2)
    assert run_check(check_deterministic, Trial(impl, CASE)).verdict is Verdict.PASS


# --- no_state_between_calls -----------------------------------------------------------------------


def test_a_result_cached_by_shape_is_caught_as_an_answer_returned_again():
    result = _run(check_no_state_between_calls, corpus.CachesForwardByShape())
    assert result.verdict is Verdict.FAIL
    assert result.message == ("A, then a different batch B on one prepared implementation: "
                              "B's result equals A's bit for bit: A's answer was returned again")


def test_gradients_accumulated_across_calls_are_caught_as_kept_state():
    result = _run(check_no_state_between_calls, corpus.GradientsAccumulateAcrossCalls())
    assert result.verdict is Verdict.FAIL
    assert "B's result differs from B's result on a fresh prepare" in result.message
    assert "something of A's was kept" in result.message


def test_a_wrong_but_stateless_answer_is_not_called_state():
    # the sign is wrong on every call alike: gradients_match_reference's business, not this check's
    assert _run(check_no_state_between_calls, corpus.SignFlipped()).verdict is Verdict.PASS


def test_a_case_where_a_and_b_have_the_same_answer_is_no_false_alarm():
    # one class: every cross-entropy gradient is 0, so B's answer equals A's by right
    one_class = make_case(NetworkSpec((2, 1), ("identity",), "cross_entropy"), 3, seed=3)
    assert _run(check_no_state_between_calls, corpus.Backprop(), one_class).verdict is Verdict.PASS


# --- one definition of "agree" ------------------------------------------------------------------------------


def test_differences_within_rounding_pass_with_a_note_unless_bitwise_equality_is_demanded():
    case = make_case(corpus.RELU, 16, seed=1)
    varies = corpus.SummationOrderVaries()
    loose = run_check(check_deterministic, Trial(as_implementation(varies), case))
    assert loose.verdict is Verdict.PASS
    assert loose.message.startswith("two identical calls differ within rounding (largest difference ")
    assert "--strict-determinism demands bitwise equality" in loose.message
    strict = run_check(check_deterministic, Trial(as_implementation(varies), case, strict_determinism=True))
    assert strict.verdict is Verdict.FAIL and "(bitwise equality demanded)" in strict.message
    assert "summation order that varies between calls" in strict.hint and "--strict-determinism" in strict.repro
    declared = FunctionImplementation(varies, "declares-bitwise")
    declared.capabilities = Capabilities(deterministic=True)  # the implementation demands it of itself
    assert run_check(check_deterministic, Trial(declared, case)).verdict is Verdict.FAIL
    # and no state is blamed for rounding, strict or not
    for strictly in (False, True):
        kept = run_check(check_no_state_between_calls, Trial(as_implementation(varies), case, strict_determinism=strictly))
        assert kept.verdict is Verdict.PASS, kept.describe()


def test_nondeterminism_beyond_rounding_fails_deterministic_and_is_not_blamed_on_state():
    noisy = corpus.NoisyGradients()
    assert _run(check_deterministic, noisy).verdict is Verdict.FAIL
    state = _run(check_no_state_between_calls, noisy)
    assert state.verdict is Verdict.PASS, state.describe()
    assert "differences no larger than fresh identical calls show: nondeterminism (see deterministic), not state" in state.message


class NoisyAndAccumulating(corpus.GradientsAccumulateAcrossCalls):
    """Keeps running sums and adds unseeded noise: the noise must not hide the state."""

    def finish(self, loss, grads, dtype):
        loss, grads = super().finish(loss, grads, dtype)
        rng = np.random.default_rng()
        return loss, [(W * (1 + 1e-4 * rng.standard_normal(W.shape)), b) for W, b in grads]


def test_state_is_still_caught_behind_nondeterminism():
    result = _run(check_no_state_between_calls, NoisyAndAccumulating())
    assert result.verdict is Verdict.FAIL
    assert "something of A's was kept" in result.message and "beyond any rounding or scheduling noise" in result.message
