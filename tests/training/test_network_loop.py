import numpy as np
import pytest

from harness.networks.cnn import cnn
from harness.networks.steps import chain_accuracy, chain_step
from harness.training.datasets import Dataset, load_dataset
from harness.training.network_loop import NetworkTraining, Trainee, batch_reversed, train_side_by_side
from tests.networks.providers import numpy_provider


@pytest.fixture(scope="module")
def small_digits():
    full = load_dataset("digits")
    return Dataset("digits (first 320)", full.x_train[:320], full.y_train[:320], full.x_test[:100], full.y_test[:100])


def setup_for(net, epochs=2, dtype="float64"):
    return NetworkTraining(net.initial_parameters(0), chain_accuracy(net, numpy_provider()), lr=0.1, momentum=0.9,
                           epochs=epochs, batch_size=32, dtype=dtype)


def scaled(step, factor):
    """A step whose conv2d weight gradient is ``factor`` times too large."""
    def wrong(params, x, y):
        loss, grads = step(params, x, y)
        (dw, db), rest = grads[0], grads[1:]
        return loss, [(dw * factor, db), *rest]

    return wrong


def test_the_same_chain_stays_within_rounding_and_a_one_percent_wrong_gradient_diverges(small_digits):
    net = cnn()
    step = chain_step(net, numpy_provider())
    runs = train_side_by_side([Trainee("numpy", step), Trainee("same", step), Trainee("1% off", scaled(step, 1.01))],
                              small_digits, setup_for(net))
    reference, twin, same, wrong = runs
    assert reference.is_reference and twin.is_twin and twin.name == "numpy (batch reversed)"
    assert same.ok and same.max_divergence == 0.0 and len(same.divergence) == 2
    assert 0 < twin.max_divergence < 1e-3 * twin.tolerance[-1]
    assert wrong.diverged and not wrong.ok and wrong.first_divergent_epoch == 0
    assert reference.final_accuracy > 0.5 and len(reference.losses) == 2 * (320 // 32)


def test_a_trainee_that_raises_is_recorded_and_the_others_still_train(small_digits):
    net = cnn()
    step = chain_step(net, numpy_provider())

    def broken(params, x, y):
        raise RuntimeError("no gradients today")

    runs = train_side_by_side([Trainee("numpy", step), Trainee("broken", broken), Trainee("after", step)],
                              small_digits, setup_for(net, epochs=1))
    assert "RuntimeError: no gradients today" in runs[2].error and not runs[2].ok
    assert runs[3].ok and runs[3].steps == 10


def test_a_nan_loss_ends_the_run_with_a_hint(small_digits):
    net = cnn()
    runs = train_side_by_side([Trainee("numpy", chain_step(net, numpy_provider())),
                               Trainee("nan", lambda p, x, y: (float("nan"), None))], small_digits, setup_for(net, 1))
    assert "training blew up (try a lower --lr)" in runs[2].error


def test_the_twin_sees_each_batch_reversed():
    seen = []
    twin = batch_reversed(Trainee("t", lambda params, x, y: seen.append((x.copy(), y.copy()))))
    twin.step([], np.arange(6).reshape(3, 2), np.arange(3))
    assert twin.name == "t (batch reversed)"
    np.testing.assert_array_equal(seen[0][1], [2, 1, 0])


def test_bad_numbers_are_refused_as_for_the_mlp():
    with pytest.raises(ValueError, match="learning rate -1"):
        NetworkTraining([], None, lr=-1, momentum=0.9, epochs=1, batch_size=1)
    with pytest.raises(ValueError, match="epochs 0"):
        NetworkTraining([], None, lr=0.1, momentum=0.9, epochs=0, batch_size=1)
