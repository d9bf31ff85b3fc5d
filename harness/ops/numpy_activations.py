"""Elementwise activations: relu, leaky_relu, abs, gelu (erf and tanh), silu, sigmoid,
tanh, identity: the NumPy provider's (their bugs and the other valid conventions at kinks are
in tests/operator_corpus/activations.py).

Conventions of the correct operators are torch's (relu'(0) = 0, leaky_relu'(0) = slope,
abs'(0) = 0; sigmoid and tanh differentiated from their output, as torch does).
sigmoid's ``s*(1-s)`` rounds to 0 at large |x|: torch's own formula, an error below the
rounding of the output (``|error| < eps * |cotangent|``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from harness.ops.numpy_operator import In, Operator, grid, normal, single

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_TANH_C = 0.044715


def sigmoid(x):
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Elementwise(Operator):
    """y = f(x); the VJP and JVP multiply by f'(x)."""

    inputs = (In((4, 5)),)
    kinks: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kinks" in cls.__dict__:
            cls.inputs = (In((4, 5), kinks=cls.kinks),)

    def derivative(self, x, **params):
        raise NotImplementedError

    def vjp(self, inputs, cotangents, **params):
        (x,) = inputs
        return (single(cotangents) * self.derivative(x, **params),)

    def jvp(self, inputs, tangents, **params):
        (x,) = inputs
        (t,) = tangents
        return (self.derivative(x, **params) * t,)

    def samples(self, rng, dtype):
        params = dict(self.params)
        return [
            ((normal(rng, (4, 5), dtype, scale=2.0),), params, "normal 4x5, scale 2"),
            ((grid(rng, (3, 4), dtype, values=(-1.5, -0.5, 0.0, 0.0, 0.5, 2.5)),), params, "exact zeros among levels"),
            ((normal(rng, (1, 1), dtype),), params, "a single element"),
            ((normal(rng, (2, 3, 4), dtype, scale=3.0),), params, "rank 3, scale 3"),
        ]


class Relu(Elementwise, correct=True):
    """relu, relu'(0) = 0 (torch.relu)."""

    name = "relu"
    kinks = (0.0,)
    # A chain's step may hand ``out=`` an array of its own (harness.ops.chain.StepPlan):
    # the forward written over its input, the VJP over its cotangent. The VJP reads only
    # x > 0, which relu(x) > 0 answers alike, so it may be handed the output instead.
    in_place = True
    fresh = True  # without out=, the forward's output and the VJP's gradient are new arrays

    def forward(self, x, out=None):
        return np.maximum(x, 0, out=out)

    def derivative(self, x):
        return (x > 0).astype(x.dtype)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a variant with its own subgradient at 0 (``derivative``) and relu's VJP multiplies
        # by its derivative (decided here once: a check per call is a cost in the MLP's step)
        if cls.derivative is not Relu.derivative and cls.vjp is Relu.vjp:
            cls.vjp = Elementwise.vjp

    def vjp(self, inputs, cotangents, out=None):
        (x,) = inputs
        # the mask multiplies as booleans: no float copy of it (the MLP's hot path)
        g = cotangents[0] if type(cotangents) is tuple and len(cotangents) == 1 else single(cotangents)
        return (np.multiply(g, x > 0, out=out),)


class LeakyRelu(Elementwise, correct=True):
    """leaky_relu, slope at 0 (torch)."""

    name = "leaky_relu"
    kinks = (0.0,)
    params = {"negative_slope": 0.01}

    def forward(self, x, negative_slope=0.01):
        return np.where(x > 0, x, negative_slope * x)

    def derivative(self, x, negative_slope=0.01):
        return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)


class Abs(Elementwise, correct=True):
    """abs, abs'(0) = 0 (torch)."""

    name = "abs"
    kinks = (0.0,)

    def forward(self, x):
        return np.abs(x)

    def derivative(self, x):
        return np.sign(x)


class Gelu(Elementwise, correct=True):
    """gelu, exact (erf) form: x * Phi(x)."""

    name = "gelu"

    def forward(self, x):
        return 0.5 * x * (1 + erf(x / math.sqrt(2)))

    def derivative(self, x):
        return 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


class Silu(Elementwise, correct=True):
    """silu (swish): x * sigmoid(x)."""

    name = "silu"

    def forward(self, x):
        return x * sigmoid(x)

    def derivative(self, x):
        s = sigmoid(x)
        return s * (1 + x * (1 - s))


class Sigmoid(Elementwise, correct=True):
    """sigmoid, differentiated from its output as torch does: s * (1 - s)."""

    name = "sigmoid"

    def forward(self, x):
        return sigmoid(x)

    def derivative(self, x):
        s = sigmoid(x)
        return s * (1 - s)


class Tanh(Elementwise, correct=True):
    """tanh, differentiated from its output: 1 - t^2."""

    name = "tanh"

    def forward(self, x):
        return np.tanh(x)

    def derivative(self, x):
        t = np.tanh(x)
        return 1 - t * t


class Identity(Elementwise, correct=True):
    """identity: y = x (an MLP's last layer before an mse loss)."""

    name = "identity"

    def forward(self, x):
        return x.copy()

    def derivative(self, x):
        return np.ones_like(x)
