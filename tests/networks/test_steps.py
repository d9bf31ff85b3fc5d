import numpy as np

from harness.networks.cnn import cnn
from harness.networks.steps import chain_accuracy, chain_step, images
from harness.ops.chain import loss_and_gradients
from tests.networks.providers import numpy_provider


def test_a_step_reshapes_rows_of_pixels_to_images():
    net, provider = cnn(), numpy_provider()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (3, 64)), np.array([1, 2, 3])
    params = net.initial_parameters(0)
    loss, grads = chain_step(net, provider)(params, x, y)
    expected_loss, expected = loss_and_gradients(net, provider, params, x.reshape(3, 1, 8, 8), y)
    assert loss == expected_loss and images(net, x).shape == (3, 1, 8, 8)
    np.testing.assert_array_equal(grads[0][0], expected[0][0])


def test_accuracy_counts_rows_classified_right_across_chunks():
    net, provider = cnn(), numpy_provider()
    params = net.initial_parameters(0)
    x = np.random.default_rng(1).uniform(0, 1, (1500, 64))
    accuracy = chain_accuracy(net, provider)
    from harness.ops.chain import predictions

    labels = predictions(net, provider, params, images(net, x))
    assert accuracy(params, x, labels) == 1.0
    assert accuracy(params, x, (labels + 1) % 10) == 0.0
