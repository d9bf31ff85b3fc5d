"""The training loop: parameters, batches and the update owned by the harness, every
implementation trained from the same start on the same batches and compared with
numpy's trajectory after every epoch; a raising or blowing-up implementation is recorded."""

import importlib.util
import math

import numpy as np
import pytest

from harness.core.protocol import as_implementation
from harness.core.registry import resolve
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyPrepared
from harness.training import loop as training
from harness.training.datasets import load_digits
from harness.training.loop import (
    TrainConfig,
    TrainingRun,
    accuracy,
    epoch_order,
    initial_parameters,
    targets,
    train,
    train_and_compare,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

DIGITS_SPEC = NetworkSpec((64, 500, 10), ("relu", "identity"), "cross_entropy")


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


# Deliberately wrong implementations, reachable as "module:attr" like a user's own.


def _numpy_grads(spec, params, x, y):
    prepared = NumpyPrepared(spec, params, x.dtype)
    loss, grads, _ = prepared.step(prepared.batch(x, y))
    return loss, grads


def gradient_one_percent_too_large(spec, params, x, y):
    """the right gradient times 1.01"""
    loss, grads = _numpy_grads(spec, params, x, y)
    return loss, [(1.01 * dW, 1.01 * db) for dW, db in grads]


def gradient_without_mean(spec, params, x, y):
    """the gradient of the summed loss: the 1/N is missing"""
    loss, grads = _numpy_grads(spec, params, x, y)
    return loss, [(len(x) * dW, len(x) * db) for dW, db in grads]


def gradient_that_raises(spec, params, x, y):
    raise RuntimeError("boom")


for _f in (gradient_one_percent_too_large, gradient_without_mean, gradient_that_raises):
    _f.dtypes = ("float32", "float64")


# --- parameters, batches, update ------------------------------------------------------


def test_initial_parameters_follow_torch_linear_and_the_seed():
    a = initial_parameters(DIGITS_SPEC, 3)
    b = initial_parameters(DIGITS_SPEC, 3)
    c = initial_parameters(DIGITS_SPEC, 4)
    assert [(W.shape, bias.shape) for W, bias in a] == DIGITS_SPEC.shapes()
    for (W, bias), fan_in in zip(a, (64, 500)):
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(W).max() <= bound and np.abs(bias).max() <= bound
        assert np.abs(W).max() > 0.9 * bound  # uniform over the whole interval, not a narrower one
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], c[0][0])
    assert initial_parameters(DIGITS_SPEC, 3, "float32")[1][0].dtype == np.float32


def test_epoch_order_is_seeded_and_drops_the_remainder():
    first = epoch_order(100, 32, epoch=0, seed=0)
    assert [len(b) for b in first] == [32, 32, 32]
    assert len(np.unique(np.concatenate(first))) == 96
    again = epoch_order(100, 32, epoch=0, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], epoch_order(100, 32, epoch=1, seed=0)[0])
    assert not np.array_equal(first[0], epoch_order(100, 32, epoch=0, seed=1)[0])


def test_epoch_order_refuses_a_batch_larger_than_the_data():
    with pytest.raises(ValueError, match="batch size 101: larger than the 100 training samples"):
        epoch_order(100, 101, 0, 0)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="learning rate 0"):
        TrainConfig(DIGITS_SPEC, lr=0)
    with pytest.raises(ValueError, match="momentum 1"):
        TrainConfig(DIGITS_SPEC, momentum=1)
    with pytest.raises(ValueError, match="batch_size 0"):
        TrainConfig(DIGITS_SPEC, batch_size=0)


# --- training -------------------------------------------------------------------------


def test_numpy_learns_the_digits(digits):
    run = train(resolve("numpy"), digits, TrainConfig(DIGITS_SPEC, epochs=3))
    assert run.error is None
    assert run.steps == 3 * (len(digits.y_train) // 32)
    assert run.losses[0] > 2.0  # ~log(10) at the start
    assert run.epoch_losses[-1] < 0.3 * run.epoch_losses[0]
    assert run.final_accuracy > 0.9
    assert len(run.snapshots) == 3 and run.is_reference


def test_same_seed_same_numbers(digits):
    config = TrainConfig(DIGITS_SPEC, epochs=2, seed=5)
    a = train(resolve("numpy"), digits, config)
    b = train(resolve("numpy"), digits, config)
    assert a.losses == b.losses and a.test_accuracy == b.test_accuracy
    c = train(resolve("numpy"), digits, TrainConfig(DIGITS_SPEC, epochs=2, seed=6))
    assert a.losses != c.losses


def test_mse_loss_trains_on_one_hot_targets(digits):
    spec = NetworkSpec((64, 100, 10), ("relu", "identity"), "mse")
    run = train(resolve("numpy"), digits, TrainConfig(spec, epochs=3))
    assert run.error is None and run.final_accuracy > 0.8


def test_reference_against_itself_has_zero_divergence(digits):
    runs = train_and_compare([resolve("numpy")], digits, TrainConfig(DIGITS_SPEC, epochs=2))
    assert [r.name for r in runs] == ["numpy", "numpy (batch reversed)"]
    assert runs[0].is_reference and runs[1].is_twin and all(r.ok for r in runs)
    function_numpy = as_implementation(_numpy_grads, "numpy as a function")
    _numpy_grads.dtypes = ("float32", "float64")
    runs = train_and_compare([function_numpy], digits, TrainConfig(DIGITS_SPEC, epochs=2))
    assert runs[0].note == "reference for the divergence"
    assert runs[2].divergence == [0.0, 0.0] and runs[2].ok


def test_epochs_after_the_twin_drifts_are_not_judged(digits, monkeypatch):
    # With a gate of 0 the twin's first (nonzero, float32) drift closes judging at once.
    monkeypatch.setattr(training, "TWIN_GATE", 0.0)
    wrong = resolve(f"{__name__}:gradient_one_percent_too_large")
    runs = train_and_compare([wrong], digits, TrainConfig(DIGITS_SPEC, epochs=2, dtype="float32"))
    assert runs[2].judged_epochs == 0 and not runs[2].diverged
    assert runs[2].note.startswith("judged for 0 of 2 epochs")
    assert runs[2].divergence[0] > runs[2].tolerance[0]  # reported, though not judged


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_follows_numpy_over_the_default_run(digits, dtype):
    runs = train_and_compare([resolve("numpy"), resolve("torch")], digits, TrainConfig(DIGITS_SPEC, dtype=dtype))
    numpy_run, _, torch_run = runs
    assert torch_run.ok, (torch_run.error, torch_run.divergence, torch_run.tolerance)
    assert 0 < torch_run.max_divergence  # different libraries do round differently
    assert numpy_run.final_accuracy >= 0.95 and torch_run.final_accuracy >= 0.95


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("wrong", ["gradient_one_percent_too_large", "gradient_without_mean"])
def test_wrong_gradient_is_flagged(digits, dtype, wrong):
    impl = resolve(f"{__name__}:{wrong}")
    runs = train_and_compare([impl], digits, TrainConfig(DIGITS_SPEC, epochs=2, dtype=dtype))
    assert runs[0].ok and runs[1].ok
    assert runs[2].diverged and not runs[2].ok
    assert runs[2].first_divergent_epoch == 0
    assert runs[2].divergence[0] > 5 * runs[2].tolerance[0]  # not a near miss


def test_an_implementation_that_raises_is_recorded_not_fatal(digits):
    runs = train_and_compare([resolve(f"{__name__}:gradient_that_raises")], digits, TrainConfig(DIGITS_SPEC, epochs=1))
    assert runs[0].ok
    assert runs[2].error == "RuntimeError: boom" and not runs[2].ok


def loss_turns_nan_on_the_third_step(spec, params, x, y):
    loss, grads = _numpy_grads(spec, params, x, y)
    loss_turns_nan_on_the_third_step.calls += 1
    return (math.nan if loss_turns_nan_on_the_third_step.calls >= 3 else loss), grads


def test_a_blown_up_loss_ends_the_run_with_a_reason(digits):
    loss_turns_nan_on_the_third_step.calls = 0
    impl = as_implementation(loss_turns_nan_on_the_third_step)
    run = train(impl, digits, TrainConfig(DIGITS_SPEC, epochs=2))
    assert run.error == "TrainingDiverged: loss is nan at epoch 1, step 3: training blew up (try a lower --lr)"
    assert not run.ok and run.steps == 2



def test_targets_are_labels_for_cross_entropy_and_one_hot_rows_for_mse():
    labels = np.array([2, 0])
    assert targets(DIGITS_SPEC, labels, "float64") is labels
    mse = NetworkSpec((64, 3), ("identity",), "mse")
    np.testing.assert_array_equal(targets(mse, labels, "float32"), np.array([[0, 0, 1], [1, 0, 0]], np.float32))
    assert targets(mse, labels, "float32").dtype == np.float32


def test_accuracy_is_the_share_of_rows_whose_largest_output_is_the_label():
    spec = NetworkSpec((2, 2), ("identity",), "cross_entropy")
    params = [(np.eye(2), np.zeros(2))]  # the output is the input
    x = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    assert accuracy(spec, params, x, np.array([0, 1, 1, 0])) == 0.5


def _run(divergence, tolerance, **kw):
    return TrainingRun("mine", "float64", epoch_losses=[1.0] * len(divergence), divergence=divergence, tolerance=tolerance, **kw)


def test_a_run_diverges_at_its_first_judged_epoch_beyond_the_tolerance():
    assert _run([0.1, 0.5, 2.0], [1.0, 1.0, 1.0]).first_divergent_epoch == 2
    assert _run([0.1, math.nan], [1.0, 1.0]).first_divergent_epoch == 1  # NaN is beyond any tolerance
    assert _run([0.1, 0.5], [1.0, 1.0]).ok
    late = _run([0.1, 0.5, 2.0], [1.0, 1.0, 1.0], judged_epochs=2)  # the twin closed judging after two epochs
    assert not late.diverged and late.ok
    twin = _run([5.0], [1.0], is_twin=True)
    assert not twin.diverged  # the twin measures rounding; it is never judged
    assert not _run([], []).ok and _run([0.1], [1.0], error="RuntimeError: boom").ok is False


def test_the_record_says_what_was_judged():
    record = _run([0.1, 0.2], [1.0, 1.0], judged_epochs=1).to_dict()
    assert record["judged_epochs"] == 1 and record["max_divergence"] == 0.2 and record["diverged"] is False
    assert TrainingRun("numpy", "float64", is_reference=True).to_dict()["judged_epochs"] is None
    assert _run([0.1], [1.0], is_twin=True).to_dict()["judged_epochs"] == 0
    assert _run([math.nan], [1.0]).to_dict()["max_divergence"] is None  # JSON has no NaN
