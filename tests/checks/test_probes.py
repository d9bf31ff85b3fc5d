"""Gradient probes: directional derivatives along seeded sign vectors against the complex
step of the reference forward. They pass right answers (at kinks too), catch a single
wrong element whatever the model size, bisect down to it, and need no reference backprop."""

import dataclasses

import numpy as np
import pytest

from harness.checks.probes import check_gradient_probes, split_segments
from harness.checks.runner import run_check
from harness.checks.trial import Trial
from harness.checks.values import check_gradients_match_reference, check_input_gradient
from harness.core.cases import Case, make_case
from harness.core.protocol import Capabilities, as_implementation
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from tests import corpus


def _case(spec=corpus.RELU, **kw):
    return corpus.Entry(None, corpus._c(spec, **kw), ()).case()


def _probe(impl, case, **kw):
    return run_check(check_gradient_probes, Trial(as_implementation(impl), case, **kw))


@pytest.mark.parametrize(
    "impl, case",
    [(corpus.Backprop(), _case()), (corpus.Backprop(), _case(corpus.DEEP_TANH)),
     (corpus.Backprop(), _case(on_kinks=True)), (corpus.ReluDerivativeOneAtZero(), _case(on_kinks=True)),
     (corpus.Float32Backprop(), _case(corpus.DEEP_TANH).astype("float32"))],
    ids=["relu", "deep-tanh", "kinks-left", "kinks-right", "float32"],
)
def test_right_answers_pass_and_say_how_close_they_came(impl, case):
    result = _probe(impl, case, probes=3, probe_seed=5)
    assert result.verdict is Verdict.PASS, result.message
    assert result.message.startswith("3 probes (seed 5), worst at ")


@pytest.mark.parametrize("seed", range(4))
def test_a_single_wrong_element_fails_every_probe_and_is_bisected_to_its_index(seed):
    bug = corpus.SingleElementOff()
    case = _case(batch=8)
    result = _probe(bug, case, probes=1, probe_seed=seed)
    i, j = bug.index(case.params[0][0].shape)
    assert result.verdict is Verdict.FAIL
    assert result.message.startswith(f"probe 0 (seed {seed}): directional derivative off by ")
    assert f"bisection localises it to layer 0 W [{i}, {j}]" in result.message


@pytest.mark.parametrize("layer", [0, 1])
def test_single_wrong_element_in_seed_size_weights_is_localised(layer):
    bug = corpus.SingleElementOff(layer=layer)
    case = corpus.Entry(bug, {}, ()).seed_case(batch=64)
    result = _probe(bug, case)
    i, j = bug.index(case.params[layer][0].shape)
    assert result.verdict is Verdict.FAIL
    assert f"layer {layer} W [{i}, {j}]" in result.message  # one element in 397,510, found by bisection


def test_float32_rounding_in_a_float64_answer_is_caught():
    assert _probe(corpus.Float32Inside(), _case()).verdict is Verdict.FAIL


def test_probes_need_no_reference_backprop():
    # With the oracle's gradients replaced by garbage, a right answer still passes the
    # probes (they differentiate the reference *forward*) and a wrong one still fails.
    case = _case(corpus.DEEP_TANH)
    for impl, verdict in ((corpus.Backprop(), Verdict.PASS), (corpus.SignFlipped(), Verdict.FAIL)):
        trial = Trial(as_implementation(impl), case)
        garbage = [(np.full_like(W, 7.0), np.full_like(b, -7.0)) for W, b in trial.expected.center]
        trial.__dict__["expected"] = dataclasses.replace(trial.expected, center=garbage)
        assert run_check(check_gradient_probes, trial).verdict is verdict


def test_wrong_shapes_are_left_to_gradient_shapes():
    result = _probe(corpus.WeightGradTransposed(), _case())
    assert result.verdict is Verdict.SKIP and "see gradient_shapes" in result.message


def test_split_halves_a_support_that_spans_tensors():
    assert split_segments([(0, 0, 5), (1, 0, 3)], 4) == ([(0, 0, 4)], [(0, 4, 5), (1, 0, 3)])
    assert split_segments([(0, 0, 5), (1, 0, 3)], 5) == ([(0, 0, 5)], [(1, 0, 3)])
    assert split_segments([(2, 3, 4)], 0) == ([], [(2, 3, 4)])


def test_zero_probes_judge_nothing_and_never_pass():
    case = make_case(corpus.RELU, 4, seed=1)
    result = run_check(check_gradient_probes, Trial(as_implementation(corpus.SignFlipped()), case, probes=0))
    assert result.verdict is Verdict.SKIP and result.message == "no probes asked for (probes=0)"
    with pytest.raises(ValueError, match=r"probes=-1: expected an integer in 0..2\*\*63-1"):
        Trial(as_implementation(corpus.Backprop()), case, probes=-1)


def test_a_probe_whose_tolerance_cannot_judge_its_derivative_is_inconclusive_never_a_pass():
    # logits (40, 0, ..., 0) with the label on the 40: every directional derivative is ~e^-40, below
    # float64's rounding of the loss: an all-zero gradient would pass a probe there
    W, b = np.zeros((6, 2)), np.zeros(6)
    W[0, 0] = 4.0
    case = Case(NetworkSpec((2, 6), ("identity",), "cross_entropy"), ((W, b),), np.array([[10.0, 1.0]]), np.array([0]))

    def zeros(spec, params, x, y):
        return 0.0, [(np.zeros_like(W), np.zeros_like(b))]

    for impl in (corpus.Backprop(), zeros):
        result = _probe(impl, case)
        assert result.verdict is Verdict.INCONCLUSIVE, result.message
        assert result.message.startswith("4 of 4 probes cannot be judged in float64: probe 0: tolerance ")


class _FlushesToZero(corpus.Float32Backprop):
    """Correct float32 backprop run as compiled code runs with flush-to-zero: every gradient
    element below float32's smallest normal number comes back as 0 (torch-compile did this
    in CI on a derandomized conformance case)."""

    def finish(self, loss, grads, dtype):
        tiny = np.finfo(np.float32).tiny
        return loss, [(np.where(np.abs(W) < tiny, 0, W).astype(W.dtype), np.where(np.abs(b) < tiny, 0, b).astype(b.dtype))
                      for W, b in grads]


def _subnormal_gradient_case():
    # an output 1e-39 away from its target: every gradient element (dL/dW = 2 r x, dL/db = 2 r
    # with x = 1) is below float32's smallest normal number (1.2e-38), and so is the rounding
    # the tolerance is made of
    W, b = np.array([[1e-39]]), np.zeros(1)
    case = Case(NetworkSpec((1, 1), ("identity",), "mse"), ((W, b),), np.array([[1.0]]), np.array([[0.0]]))
    return case.astype("float32")


def test_gradients_below_the_smallest_normal_number_flushed_to_zero_are_inconclusive_not_a_fail():
    case = _subnormal_gradient_case()
    flushed = _FlushesToZero()
    assert all(not np.any(g) for p in flushed(case.spec, case.params, case.x, case.y)[1] for g in p)  # all flushed
    for impl in (corpus.Float32Backprop(), flushed):  # kept subnormal or flushed: neither is judgeable in float32
        result = _probe(impl, case)
        assert result.verdict is Verdict.INCONCLUSIVE, result.message
        assert "cannot be judged in float32" in result.message


def test_a_wrong_gradient_of_normal_size_is_still_caught_where_the_right_one_is_subnormal():
    case = _subnormal_gradient_case()

    def ones(spec, params, x, y):  # a gradient 1e38 times too large: no underflow allowance hides it
        return 0.0, [(np.ones((1, 1), np.float32), np.ones(1, np.float32))]

    result = _probe(ones, case)
    assert result.verdict is Verdict.FAIL, result.message


class _FlushesToZero(corpus.Float32Backprop):
    """Correct float32 backprop that flushes results below float32's smallest normal
    number to zero, as compiled code does (torch.compile on the CPU)."""

    input_grad = True
    capabilities = Capabilities(dtypes={"float32"}, input_grad=True)
    factor = 1.0  # > 1: dL/dx scaled (a bug)

    @staticmethod
    def flush(a):
        return np.where(np.abs(a) < np.finfo(np.float32).smallest_normal, np.float32(0), a).astype(np.float32)

    def activate(self, name, z):
        if name == "sigmoid":  # (the corpus's 0.5 (1 + tanh(z / 2)) rounds to 0 below eps)
            with np.errstate(over="ignore"):
                return self.flush(np.float32(1) / (np.float32(1) + np.exp(-z)))
        return self.flush(super().activate(name, z))

    def activation_derivative(self, name, z, a):
        return self.flush(super().activation_derivative(name, z, a))

    def weight_grad(self, delta, a_prev):
        return self.flush(self.flush(delta).T @ a_prev)

    def bias_grad(self, delta):
        return self.flush(self.flush(delta).sum(axis=0))

    def propagate(self, delta, W, layer):
        return self.flush(self.flush(delta) @ W)

    def input_gradient(self, delta):
        return delta * np.float32(self.factor)


def _saturated_sigmoid_case():
    # drawn by the conformance suite (hypothesis), where torch.compile failed
    # input_gradient and gradient_probes: sigmoid's derivative ~1e-40 flushed to zero,
    # then multiplied by weights of ~200, moves dL/dx by 4e-37 (float32's smallest
    # normal number is 1.2e-38)
    f = np.float32
    W0 = np.array([[-1.671875, 1.875, -1.671875], [0.078125, 1.484375, -1.671875],
                   [-1.671875, -1.671875, -1.671875], [-1.671875, -1.671875, 1.5]], f)
    W1 = np.array([[-8, -8, -8, 218], [-222, -256, -8, -8]], f)
    params = ((W0, np.array([0.8125, -1.65625, 0, 0], f)), (W1, np.array([0, -178], f)))
    x = np.array([[0, 0, -0.25], [1.25, -0.25, -1]], f)
    return Case(NetworkSpec((3, 4, 2), ("tanh", "sigmoid"), "mse"), params, x, np.full((2, 2), 0.5, f))


@pytest.mark.parametrize("check", [check_gradient_probes, check_gradients_match_reference, check_input_gradient])
def test_gradients_flushed_to_zero_where_float32_underflows_are_no_failure(check):
    result = run_check(check, Trial(as_implementation(_FlushesToZero()), _saturated_sigmoid_case()))
    assert result.verdict is Verdict.PASS, result.message


def test_the_allowance_for_flushing_still_fails_a_wrong_input_gradient_of_that_size():
    bug = _FlushesToZero()
    bug.factor = 1.25  # dL/dx at ~4e-34 off by a quarter
    result = run_check(check_input_gradient, Trial(as_implementation(bug), _saturated_sigmoid_case()))
    assert result.verdict is Verdict.FAIL, result.message
