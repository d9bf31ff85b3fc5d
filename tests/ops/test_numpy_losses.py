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


@pytest.mark.parametrize("labels, bad", [([2, -1, 0], "label -1 at row 1"), ([2, 4, 0], "label 4 at row 1"),
                                         ([0.0, 1.5, 2.0], "labels are float64")])
@pytest.mark.parametrize("ignore_index", [-100, 3])
def test_cross_entropy_refuses_a_label_that_is_no_class_naming_it(labels, bad, ignore_index):
    # -1 would index from the end (a wrong loss, no error), 4 and 1.5 are no class of 4
    from harness.ops.numpy_losses import CrossEntropy

    op, logits, labels = CrossEntropy(), np.random.default_rng(0).standard_normal((3, 4)), np.asarray(labels)
    expected = f"{bad}.*expected .*0..3 \\(or ignore_index={ignore_index}\\)"
    for call in (lambda: op.forward(logits, labels, ignore_index=ignore_index),
                 lambda: op.vjp((logits, labels), (1.0,), ignore_index=ignore_index),
                 lambda: op.forward_vjp((logits, labels), (1.0,), ignore_index=ignore_index),
                 lambda: op.jvp((logits, labels), (logits, None), ignore_index=ignore_index),
                 lambda: op.forward(logits, labels, ignore_index=ignore_index, label_smoothing=0.1)):
        with pytest.raises(ValueError, match=expected):
            call()
