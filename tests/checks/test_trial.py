"""A trial: every step runs on a fresh copy (the pristine case is never handed out), the
first answer and the oracle's are computed once, an implementation's exception becomes
``ImplementationRaised`` naming the phase and place, and the repro rebuilds the case."""

import numpy as np
import pytest

from harness.checks.trial import (
    ImplementationRaised,
    Trial,
    flat,
    other_batch,
    other_params,
    shapes_ok,
    subcase,
    summarise,
    tensor_names,
)
from harness.core.cases import Case, make_case
from harness.core.protocol import Capabilities, Implementation, Prepared, as_implementation
from harness.core.reference import loss_and_grads
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from tests import corpus

SPEC = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")
CASE = make_case(SPEC, 4, seed=2)


def _trial(impl, case=CASE, **kw):
    return Trial(as_implementation(impl), case, **kw)


def test_a_trial_needs_a_resolved_implementation():
    with pytest.raises(TypeError, match="Trial needs an Implementation"):
        Trial(corpus.Backprop(), CASE)


def test_a_mutating_implementation_harms_only_its_copy():
    trial = _trial(corpus.NormalisesInputsInPlace())
    x_before = CASE.x.copy()
    result, working = trial.first
    assert not np.array_equal(working.x, x_before)  # the working copy was centred ...
    np.testing.assert_array_equal(trial.case.x, x_before)  # ... the pristine case was not
    trial.call()
    np.testing.assert_array_equal(CASE.x, x_before)


def test_the_first_answer_and_the_oracles_are_computed_once():
    calls = []

    def counting(spec, params, x, y):
        calls.append(1)
        return loss_and_grads(spec, params, x, y)

    trial = _trial(counting)
    assert trial.first is trial.first and len(calls) == 1
    assert trial.expected is trial.expected
    trial.call()
    assert len(calls) == 2  # call() is always a fresh prepare and step


def test_an_exception_in_the_step_names_the_phase_the_error_and_the_place():
    def broken(spec, params, x, y):
        raise RuntimeError("shape mismatch in layer 2")

    with pytest.raises(ImplementationRaised) as info:
        _trial(broken).call()
    assert str(info.value).startswith("step raised RuntimeError: shape mismatch in layer 2 (test_trial.py:")


def test_an_exception_in_prepare_names_prepare():
    class FailsToPrepare(Implementation):
        name = "fails-to-prepare"

        def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
            raise MemoryError("no room for the weights")

    with pytest.raises(ImplementationRaised, match="prepare raised MemoryError: no room for the weights"):
        _ = _trial(FailsToPrepare()).first


def test_to_numpy_must_return_a_step_result():
    class Odd(Prepared):
        def step(self, batch):
            return None

        def to_numpy(self, result):
            return {"loss": 0.0}

    class OddImpl(Implementation):
        name = "odd"

        def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
            return Odd()

    with pytest.raises(ImplementationRaised, match="to_numpy returned dict, expected StepResult"):
        _trial(OddImpl()).call()


def test_input_grad_is_asked_for_exactly_when_declared():
    asked = []

    class Recorder(Implementation):
        name = "recorder"

        def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
            asked.append(input_grad)
            return as_implementation(corpus.Backprop()).prepare(spec, params)

    plain, declaring = Recorder(), Recorder()
    declaring.capabilities = Capabilities(input_grad=True)
    Trial(plain, CASE).call()
    Trial(declaring, CASE).call()
    assert asked == [False, True]


def test_the_repro_rebuilds_the_case_and_names_a_device_that_is_not_the_default():
    trial = _trial(corpus.Backprop("mine"))
    assert trial.repro() == f"backprop-harness check --impl {trial.impl.name} {CASE.recipe}"
    elsewhere = _trial(corpus.Backprop("mine"), device="cuda:1")
    assert elsewhere.repro().endswith(" --device cuda:1")
    drawn = Case(CASE.spec, CASE.params, CASE.x, CASE.y)  # no recipe (a drawn case): only a case file rebuilds it
    assert _trial(corpus.Backprop(), drawn).repro().endswith("--case-file CASE.npz")


def test_a_result_carries_the_repro_only_when_something_is_wrong():
    trial = _trial(corpus.Backprop())
    passed, failed = trial.result("x", Verdict.PASS), trial.result("x", Verdict.FAIL, "bad")
    assert passed.repro == "" and failed.repro == trial.repro()
    assert failed.case == CASE.describe() and failed.seed == CASE.seed and failed.impl == trial.impl.name
    assert trial.result("x", Verdict.SKIP).repro == ""


def test_an_answer_is_judged_at_the_coarser_of_the_asked_and_returned_precision():
    trial = _trial(corpus.Backprop())  # a float64 case
    assert trial.judged_dtype([np.zeros(2)]) == "float64"
    assert trial.judged_dtype([np.zeros(2), np.zeros(2, np.float32)]) == "float32"
    assert trial.judged_dtype([np.zeros(2, np.int64), np.zeros(2, np.float16)]) == "float64"  # only float32/64 count
    single = _trial(corpus.Float32Backprop(), CASE.astype("float32"))
    assert single.judged_dtype([np.zeros(2)]) == "float32"  # a float64 answer is not judged finer than asked


# --- helpers -----------------------------------------------------------------------------


def test_tensor_names_and_flat_follow_the_layers():
    assert tensor_names(2) == ["layer 0 W", "layer 0 b", "layer 1 W", "layer 1 b"]
    assert flat([("W0", "b0"), ("W1", "b1")]) == ["W0", "b0", "W1", "b1"]


def test_shapes_ok_needs_one_pair_per_layer_shaped_like_the_parameters():
    _, grads = loss_and_grads(SPEC, CASE.params, CASE.x, CASE.y)
    assert shapes_ok(grads, CASE)
    assert not shapes_ok(grads[:1], CASE)
    assert not shapes_ok([(grads[0][0].T, grads[0][1]), grads[1]], CASE)


def test_subcase_takes_samples_and_keeps_the_parameters():
    sub = subcase(CASE, [2, 0])
    np.testing.assert_array_equal(sub.x, CASE.x[[2, 0]])
    np.testing.assert_array_equal(sub.y, CASE.y[[2, 0]])
    assert sub.params is CASE.params and sub.batch == 2


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_other_batch_and_other_params_differ_in_values_not_in_shapes(loss):
    case = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), loss), 5, "float32", seed=1)
    b, p = other_batch(case), other_params(case)
    assert b.params is case.params and not np.array_equal(b.x, case.x)
    assert b.x.shape == case.x.shape and b.x.dtype == case.x.dtype and b.y.dtype == case.y.dtype
    for (W, bias), (W2, bias2) in zip(case.params, p.params):
        assert W2.shape == W.shape and W2.dtype == W.dtype and not np.array_equal(W, W2) and not np.array_equal(bias, bias2)
    np.testing.assert_array_equal(other_batch(case).x, b.x)  # drawn from the case's seed: repeatable


def test_summarise_without_a_traceback_has_no_place():
    assert summarise(ValueError("bad"), "step") == "step raised ValueError: bad"
