import numpy as np
import pytest

from harness.networks.cnn import cnn
from harness.networks.steps import chain_step
from harness.networks.torch_cnn import torch_cnn_step
from harness.ops.chain import Network, Node
from tests.networks.providers import numpy_provider


def test_the_torch_cnn_agrees_with_the_numpy_chain_to_rounding():
    pytest.importorskip("torch")
    net = cnn()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (6, 64)), rng.integers(0, 10, 6)
    params = net.initial_parameters(2)
    loss, grads = torch_cnn_step(net)(params, x, y)
    expected_loss, expected = chain_step(net, numpy_provider())(params, x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-13)
    for got, want in zip([g for group in grads for g in group], [g for group in expected for g in group]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_another_chain_is_refused_by_name():
    pytest.importorskip("torch")
    other = Network("mlp", (Node("linear", {}, (("W", (3, 2)), ("b", (3,)))), Node("cross_entropy")), (2,), 3)
    with pytest.raises(ValueError, match="not mlp's linear -> cross_entropy"):
        torch_cnn_step(other)
