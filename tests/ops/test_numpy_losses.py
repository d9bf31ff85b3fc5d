"""The NumPy operators of harness/ops/numpy_losses.py pass every mapping check on their
record's sample cases in float32 and float64 (their bugs are caught in tests/operator_corpus)."""

import numpy as np
import pytest

from tests.ops.checking import assert_passes

OPERATORS = ['cross_entropy', 'mse']


@pytest.mark.parametrize("name", OPERATORS)
def test_the_numpy_operator_passes_on_its_samples(name):
    assert_passes(name, "numpy")


@pytest.mark.parametrize("ignore_index, labels", [(-100, [2, -100, 0]), (3, [0, 3, 1]), (-100, [2, 1, 0])])
def test_cross_entropy_forward_vjp_is_forward_and_vjp_with_ignored_rows_and_without(ignore_index, labels):
    # -100 is no class index (C = 4): its row makes the plain path's index raise and the general
    # path takes it; 3 is a class id, found by scanning the labels.
    from harness.ops.numpy_losses import CrossEntropy

    op, logits, labels = CrossEntropy(), np.random.default_rng(0).standard_normal((3, 4)), np.asarray(labels)
    loss, (d, _) = op.forward_vjp((logits, labels), (0.7,), ignore_index=ignore_index)
    assert loss == op.forward(logits, labels, ignore_index=ignore_index)
    np.testing.assert_array_equal(d, op.vjp((logits, labels), (0.7,), ignore_index=ignore_index)[0])
    if ignore_index in labels:
        assert not d[list(labels).index(ignore_index)].any()  # the ignored row gets no gradient
