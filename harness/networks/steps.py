"""A network's training step and accuracy for ``harness.training.network_loop``: the
chain with one provider's operators, on rows of pixels reshaped to the network's input."""

from __future__ import annotations

import numpy as np

from harness.ops.chain import Network, loss_and_gradients, predictions


def images(network: Network, x) -> np.ndarray:
    """Rows of pixels (N, features) as the network's input (N, *input_shape)."""
    return np.reshape(x, (len(x), *network.input_shape))


def chain_step(network: Network, provider):
    """``step(params, x, y) -> (loss, gradients)``: one forward and backward of the chain."""
    def step(params, x, y):
        return loss_and_gradients(network, provider, params, images(network, x), y)

    return step


def chain_accuracy(network: Network, provider):
    """``accuracy(params, x, labels)``: the fraction of rows the chain classifies right
    (evaluated in chunks, so a large test set needs little memory)."""
    def accuracy(params, x, labels):
        right = 0
        for start in range(0, len(x), 1024):
            chunk = images(network, x[start:start + 1024])
            right += int(np.sum(predictions(network, provider, params, chunk) == labels[start:start + 1024]))
        return right / max(len(x), 1)

    return accuracy
