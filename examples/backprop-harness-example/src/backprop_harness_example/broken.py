"""The example with a deliberate, common bug: the bias gradient is summed over the
batch instead of averaged (the loss is a mean). No entry point exposes it."""

from backprop_harness_example.mlp import loss_and_grads


def backprop(spec, params, x, y):
    """Hand-written NumPy backprop, bias gradient off by the batch size."""
    loss, grads = loss_and_grads(spec, params, x, y)
    return loss, [(dW, db * x.shape[0]) for dW, db in grads]
