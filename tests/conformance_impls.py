"""Implementations for the plugin's tests: a correct one and realistic broken ones,
each the plain-function shortcut ``f(spec, params, x, y) -> (loss, grads)``."""

from harness.core import reference
from harness.core.protocol import Capabilities, Implementation


def correct(spec, params, x, y):
    """The float64 reference itself."""
    return reference.loss_and_grads(spec, params, x, y)


def bias_gradient_summed(spec, params, x, y):
    """Forgets to divide the bias gradients by the batch size."""
    loss, grads = correct(spec, params, x, y)
    return loss, [(dW, db * len(x)) for dW, db in grads]


bias_gradient_summed.activations = ("relu", "identity")
bias_gradient_summed.losses = ("cross_entropy",)


class Unavailable(Implementation):
    name = "never-available"
    capabilities = Capabilities()

    def unavailable_reason(self, device=None):
        return "needs hardware this machine lacks"

    def prepare(self, spec, params, *, dtype="float64", device=None):  # pragma: no cover
        raise AssertionError("an unavailable implementation was prepared")

