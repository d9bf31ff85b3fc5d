"""The NumPy operators of harness/ops/numpy_pooling.py pass every mapping check on their
record's sample cases in float32 and float64 (their bugs are caught in tests/operator_corpus)."""

import pytest

from tests.ops.checking import assert_passes

OPERATORS = ['max_pool2d', 'avg_pool2d']


@pytest.mark.parametrize("name", OPERATORS)
def test_the_numpy_operator_passes_on_its_samples(name):
    assert_passes(name, "numpy")
