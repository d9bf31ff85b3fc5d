"""Trajectory agreement: a relative divergence per tensor, a tolerance that follows the
dtype and grows like sqrt(steps), and the batch-reversed twin that rounds differently."""

import math

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.registry import resolve
from harness.core.spec import NetworkSpec
from harness.training.datasets import load_digits
from harness.training.loop import TrainConfig, train_and_compare
from harness.training.trajectory import (
    TRAJECTORY_FACTOR,
    TWIN_GATE,
    BatchReversed,
    relative_divergence,
    trajectory_tolerance,
)

DIGITS_SPEC = NetworkSpec((64, 500, 10), ("relu", "identity"), "cross_entropy")


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def test_relative_divergence_is_per_tensor_and_relative():
    ref = [(np.array([[10.0, -20.0]]), np.array([0.5]))]
    same = [(ref[0][0].copy(), ref[0][1].copy())]
    assert relative_divergence(same, ref) == 0.0
    moved_w = [(np.array([[10.0, -19.0]]), np.array([0.5]))]
    assert relative_divergence(moved_w, ref) == pytest.approx(1.0 / 20.0)
    # The small bias tensor is judged on its own scale, not drowned by W's.
    moved_b = [(ref[0][0], np.array([0.25]))]
    assert relative_divergence(moved_b, ref) == pytest.approx(0.5)
    assert math.isnan(relative_divergence([(np.array([[np.nan, 0.0]]), ref[0][1])], ref))


def test_tolerance_follows_dtype_and_grows_with_steps():
    assert trajectory_tolerance("float32", 100) / trajectory_tolerance("float64", 100) == pytest.approx(2.0**29)
    assert trajectory_tolerance("float64", 400) == pytest.approx(2 * trajectory_tolerance("float64", 100))


def test_batch_reversed_twin_rounds_differently_but_stays_within_rounding(digits):
    runs = train_and_compare([resolve("numpy")], digits, TrainConfig(DIGITS_SPEC, epochs=2, dtype="float32"))
    twin = runs[1]
    assert 0 < max(twin.divergence) <= TWIN_GATE * twin.tolerance[-1]
    assert twin.judged_epochs is None and runs[0].judged_epochs is None


def test_the_tolerance_is_the_factor_times_eps_times_root_steps():
    assert trajectory_tolerance("float64", 16) == TRAJECTORY_FACTOR * 2.0**-52 * 4
    assert trajectory_tolerance("float64", 0) == trajectory_tolerance("float64", 1)  # never zero
    # a 1% gradient error after one epoch of digits (44 steps) is far outside it
    assert trajectory_tolerance("float32", 44) < 1e-2 and trajectory_tolerance("float64", 44) < 1e-10


def test_the_twin_reverses_each_batch_and_delegates_everything_else():
    numpy = resolve("numpy")
    twin = BatchReversed(numpy)
    assert twin.name == "numpy (batch reversed)" and twin.capabilities is numpy.capabilities
    case = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), "cross_entropy"), 5, seed=1)
    prepared = twin.prepare(case.spec, case.params)
    x, y = prepared.batch(case.x, case.y)
    np.testing.assert_array_equal(x, case.x[::-1])
    np.testing.assert_array_equal(y, case.y[::-1])
    mine = prepared.to_numpy(prepared.step((x, y)))
    original = numpy.prepare(case.spec, case.params)
    theirs = original.to_numpy(original.step(original.batch(case.x, case.y)))
    for (dW, db), (tW, tb) in zip(mine.grads, theirs.grads):  # the same mean gradient, up to rounding
        np.testing.assert_allclose(dW, tW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(db, tb, rtol=1e-12, atol=1e-15)
    assert math.isclose(float(mine.loss), float(theirs.loss), rel_tol=1e-12)
