"""The pure-Python provider offers the MLP's operators, each passing the mapping checks on
its record's samples (rank-3 inputs, ignored rows and label smoothing included), and it
refuses a leaky_relu slope other than the MLP's rather than computing it wrongly."""

import numpy as np
import pytest

from harness import ops
from harness.ops.pure_python_ops import LeakyRelu
from tests.ops.checking import assert_passes

MLP_OPERATORS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "identity", "cross_entropy", "mse")


def test_the_pure_python_provider_offers_the_mlp_s_operators():
    assert set(ops.provider("pure-python").operators) == set(MLP_OPERATORS)


@pytest.mark.parametrize("name", MLP_OPERATORS)
def test_every_pure_python_operator_passes_on_its_samples(name):
    assert_passes(name, "pure-python")


def test_another_leaky_relu_slope_is_refused():
    with pytest.raises(ValueError, match="negative_slope=0.2"):
        LeakyRelu().forward(np.ones(3), negative_slope=0.2)
