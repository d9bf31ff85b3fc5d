"""Elementwise activations: relu, leaky_relu, abs, gelu (erf and tanh), silu, sigmoid,
tanh -- with their realistic backward bugs and the valid conventions at kinks.

Conventions of the correct operators are torch's (relu'(0) = 0, leaky_relu'(0) = slope,
abs'(0) = 0; sigmoid and tanh differentiated from their output, as torch does); the
variants take the other valid values (1, 1/2, jax's 1 for abs and leaky_relu).

Not a bug here: the memo's #48, sigmoid's ``s*(1-s)`` rounding to 0 at large |x|. It is
torch's own formula, and the error it makes is below the rounding of the output
(``|error| < eps * |cotangent|``); ``SigmoidSaturated`` is a correct variant for that reason.

The correct operators and their samples are the NumPy provider's, in harness/ops/numpy_activations.py;
this module holds the bugs and variants that subclass them.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_activations import (
    GELU_TANH_C,
    SQRT_2_OVER_PI,
    Abs,
    Elementwise,
    Gelu,
    LeakyRelu,
    Relu,
    Sigmoid,
    Silu,
    Tanh,
    sigmoid,
)
from harness.ops.numpy_operator import normal

# --- bugs ------------------------------------------------------------------------------------


class ReluInPlace(Relu):
    """relu computed in place (np.maximum(x, 0, out=x)): the caller's input is overwritten."""

    source = "https://github.com/pytorch/pytorch/issues/31938"

    def forward(self, x):
        return np.maximum(x, 0, out=x)


class ReluGradientNotMultiplied(Relu):
    """relu backward returns the mask (x > 0) without multiplying by the cotangent."""

    source = "torch gradcheck's 'backward not multiplied by grad_output' test exists for this"

    def vjp(self, inputs, cotangents):
        (x,) = inputs
        return (self.derivative(x),)


class LeakyReluIgnoresSlope(LeakyRelu):
    """leaky_relu backward passes 0 for x < 0, as relu does: the slope is ignored."""

    source = "https://github.com/deeplearning4j/deeplearning4j/issues/8178"

    def derivative(self, x, negative_slope=0.01):
        return (x > 0).astype(x.dtype)


class LeakyReluInPlace(LeakyRelu):
    """leaky_relu_ in place: the negative entries of the caller's input are scaled."""

    source = "https://github.com/pytorch/pytorch/issues/31938"

    def forward(self, x, negative_slope=0.01):
        x[x < 0] *= negative_slope
        return x


class GeluTanhDerivative(Gelu):
    """gelu forward is exact (erf) but the backward uses the tanh approximation's derivative."""

    source = "https://github.com/huggingface/candle/pull/1160 vs /pull/1258"

    def derivative(self, x):
        return gelu_tanh_derivative(x)


class SiluMissingParenthesis(Silu):
    """silu derivative 1 + e + x*e/(1+e)^2 instead of (1 + e + x*e)/(1+e)^2, e = exp(-x)."""

    source = "https://github.com/chelsea0x3b/dfdx/pull/915"

    def derivative(self, x):
        e = np.exp(-x)
        return 1 + e + x * e / (1 + e) ** 2


class SigmoidDerivativeOfInput(Sigmoid):
    """sigmoid backward x * (1 - x) with x the input, not the output s."""

    source = "https://github.com/BoltzmannEntropy/interviews.ai/issues/15"

    def derivative(self, x):
        return x * (1 - x)


class SigmoidOfOneMinusSigmoid(Sigmoid):
    """sigmoid backward sigmoid(1 - sigmoid(x)): a composition, not a product."""

    source = "https://github.com/yizt/numpy_neural_network/issues/3"

    def derivative(self, x):
        return sigmoid(1 - sigmoid(x))


class TanhDerivativeOfInput(Tanh):
    """tanh backward 1 - x^2 with x the input, not the output t."""

    source = "https://github.com/karpathy/llm.c/pull/307"

    def derivative(self, x):
        return 1 - x * x


# --- correct variants ------------------------------------------------------------------------


class ReluOneAtZero(Relu):
    """relu'(0) = 1 (torch.clamp(min=0)'s convention): a valid subgradient."""

    def derivative(self, x):
        return (x >= 0).astype(x.dtype)


class ReluHalfAtZero(Relu):
    """relu'(0) = 1/2 (torch.maximum(x, 0) and jnp.maximum split the tie): a valid subgradient."""

    def derivative(self, x):
        return np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0)).astype(x.dtype)


class LeakyReluOneAtZero(LeakyRelu):
    """leaky_relu'(0) = 1 (jax.nn.leaky_relu's convention): a valid subgradient."""

    def derivative(self, x, negative_slope=0.01):
        return np.where(x >= 0, 1.0, negative_slope).astype(x.dtype)


class AbsOneAtZero(Abs):
    """abs'(0) = 1 (jnp.abs's convention): a valid subgradient."""

    def derivative(self, x):
        return np.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def gelu_tanh_derivative(x):
    inner = SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)
    t = np.tanh(inner)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_C * x * x)


class GeluTanh(Gelu, correct=True):
    """gelu with the tanh approximation and that approximation's own derivative: a correct
    operator of its own (approximate='tanh'), judged against its own forward."""

    name = "gelu_tanh"

    def forward(self, x):
        return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)))

    def derivative(self, x):
        return gelu_tanh_derivative(x)


class Saturated(Elementwise):
    """Samples far out on the flat tails, where the derivative is below 1e-12."""

    def samples(self, rng, dtype):
        far = np.array([[-40.0, -30.0, -20.0, -17.0], [17.0, 20.0, 30.0, 40.0]])
        return [
            ((far.astype(dtype),), {}, "|x| from 17 to 40"),
            ((normal(rng, (3, 4), dtype, scale=25.0),), {}, "normal, scale 25"),
        ]


class SigmoidSaturated(Saturated, Sigmoid):
    """sigmoid at |x| up to 40 with torch's s*(1-s): 0 where the true derivative is ~1e-18,
    an error below the output's rounding (eps * |cotangent|), so not a bug."""


class TanhSaturated(Saturated, Tanh):
    """tanh at |x| up to 40 with torch's 1 - t^2: exactly 0 on the tails, below rounding."""
