"""A corpus of realistic backprop bugs, and correct variants, for proving the checker.

``Backprop`` is a plain NumPy backprop written step by step; each bug is a subclass
that gets exactly one step wrong, the way people do. Instances are called as
``f(spec, params, x, y) -> (loss, grads)``, the harness's function shortcut.

Each ``Entry`` names the case that exposes the bug and the check(s) that must flag
it; ``CORRECT`` lists variants that no check may flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.core.cases import Case, make_case
from harness.core.protocol import Capabilities
from harness.core.spec import LEAKY_RELU_SLOPE, SEED_SPEC, NetworkSpec


class Backprop:
    """Correct float64 backprop, one overridable method per step."""

    dtypes = ("float64",)
    input_grad = False  # whether dL/dx is returned too (then capabilities declare it)

    def __init__(self, name=None):
        self.__name__ = name or type(self).__name__
        self.__qualname__ = self.__name__

    def __call__(self, spec, params, x, y):
        dtype = self.compute_dtype(x)
        params = [(W.astype(dtype, copy=False), b.astype(dtype, copy=False)) for W, b in params]
        x = x.astype(dtype, copy=False)
        zs, acts = [], [x]
        for (W, b), name in zip(params, spec.activations):
            zs.append(acts[-1] @ W.T + b)
            acts.append(self.activate(name, zs[-1]))
        loss, delta = self.loss_and_delta(spec, acts[-1], y)
        grads = [None] * len(params)
        for i in reversed(range(len(params))):
            delta = delta * self.activation_derivative(spec.activations[i], zs[i], acts[i + 1])
            grads[i] = (self.weight_grad(delta, acts[i]), self.bias_grad(delta))
            delta = self.propagate(delta, params[i][0], i)
        result = self.finish(loss, grads, x.dtype)
        if self.input_grad:
            return (*result, self.input_gradient(delta))
        return result

    def compute_dtype(self, x):
        return x.dtype

    def activate(self, name, z):
        if name == "relu":
            return np.maximum(z, 0)
        if name == "leaky_relu":
            return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)
        if name == "tanh":
            return np.tanh(z)
        if name == "sigmoid":
            return 0.5 * (1 + np.tanh(z / 2))  # = 1 / (1 + e^-z), overflow-free
        return z

    def activation_derivative(self, name, z, a):
        if name == "relu":
            return (z > 0).astype(z.dtype)
        if name == "leaky_relu":
            return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE).astype(z.dtype)
        if name == "tanh":
            return 1 - a * a
        if name == "sigmoid":
            return a * (1 - a)
        return np.ones_like(z)

    def softmax(self, out):
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss_and_delta(self, spec, out, y):
        n = out.shape[0]
        if spec.loss == "cross_entropy":
            p = self.softmax(out)
            loss = -np.log(p[np.arange(n), y]).mean()
            delta = p.copy()
            delta[np.arange(n), y] -= 1
            return loss, delta / n
        diff = out - y
        return (diff**2).mean(), 2 * diff / diff.size

    def weight_grad(self, delta, a_prev):
        return delta.T @ a_prev

    def bias_grad(self, delta):
        return delta.sum(axis=0)

    def propagate(self, delta, W, layer):
        return delta @ W

    def finish(self, loss, grads, dtype):
        return loss, grads

    def input_gradient(self, delta):
        return delta  # dL/dx = dL/dz0 W0, already the last propagate


class WithInputGradient(Backprop):
    """Returns dL/dx as the third element, and declares so."""

    input_grad = True
    capabilities = Capabilities(dtypes={"float64"}, input_grad=True)


# --- bugs ------------------------------------------------------------------------


class ReluDerivativeIsActivation(Backprop):
    def activation_derivative(self, name, z, a):
        return a if name == "relu" else super().activation_derivative(name, z, a)  # relu(z), not 1[z>0]


class SigmoidDerivativeMissingFactor(Backprop):
    def activation_derivative(self, name, z, a):
        return a if name == "sigmoid" else super().activation_derivative(name, z, a)  # s instead of s(1-s)


class TanhDerivativeNotSquared(Backprop):
    def activation_derivative(self, name, z, a):
        return 1 - a if name == "tanh" else super().activation_derivative(name, z, a)  # 1-a instead of 1-a^2


class LeakyReluLeftSlopeZero(Backprop):
    def activation_derivative(self, name, z, a):
        if name == "leaky_relu":
            return (z > 0).astype(z.dtype)  # the negative side's 0.01 forgotten
        return super().activation_derivative(name, z, a)


class LeakyReluLeftSlopeOne(Backprop):
    def activation_derivative(self, name, z, a):
        if name == "leaky_relu":
            return np.where(z >= 0, 1.0, 1.0).astype(z.dtype)  # slope 1 on both sides
        return super().activation_derivative(name, z, a)


class SumInsteadOfMean(Backprop):
    def loss_and_delta(self, spec, out, y):
        loss, delta = super().loss_and_delta(spec, out, y)
        return loss, delta * out.shape[0]  # the 1/N of the mean forgotten


class MeanTakenTwice(Backprop):
    def weight_grad(self, delta, a_prev):
        return delta.T @ a_prev / delta.shape[0]  # delta already carries 1/N

    def bias_grad(self, delta):
        return delta.mean(axis=0)


class SignFlipped(Backprop):
    def loss_and_delta(self, spec, out, y):
        loss, delta = super().loss_and_delta(spec, out, y)
        return loss, -delta  # (onehot - p): the gradient of -L


class WeightGradTransposed(Backprop):
    def weight_grad(self, delta, a_prev):
        return a_prev.T @ delta  # a^T delta: shaped (in, out) where (out, in) belongs


class BiasGradFirstSampleOnly(Backprop):
    def bias_grad(self, delta):
        return delta[0] * 1.0  # indexing instead of summing over the batch


class BiasGradKeepdims(Backprop):
    def bias_grad(self, delta):
        return delta.sum(axis=0, keepdims=True)  # shape (1, out), not (out,)


class BiasGradZero(Backprop):
    def bias_grad(self, delta):
        return np.zeros(delta.shape[1], delta.dtype)  # biases treated as constants


class HiddenLayerSkipsActivationDerivative(Backprop):
    def activation_derivative(self, name, z, a):
        if z.shape[1] != self._out_width:
            return np.ones_like(z)  # forgot act'(z) in every hidden layer
        return super().activation_derivative(name, z, a)

    def __call__(self, spec, params, x, y):
        self._out_width = spec.sizes[-1]
        return super().__call__(spec, params, x, y)


class SingleElementOff(Backprop):
    """One element of a weight gradient off by 10 % of its value — as from an indexing slip."""

    def __init__(self, name=None, layer=0):
        super().__init__(name)
        self.layer = layer

    @staticmethod
    def index(shape):
        return shape[0] // 2, shape[1] // 3

    def finish(self, loss, grads, dtype):
        dW = grads[self.layer][0].copy()
        dW[self.index(dW.shape)] *= 1.1
        grads[self.layer] = (dW, grads[self.layer][1])
        return loss, grads


class GradientsAccumulateAcrossCalls(Backprop):
    """Keeps running gradient sums, as torch code that never calls zero_grad()."""

    def __init__(self, name=None):
        super().__init__(name)
        self.running = None

    def finish(self, loss, grads, dtype):
        if self.running is None or [g.shape for p in self.running for g in p] != [g.shape for p in grads for g in p]:
            self.running = [(np.zeros_like(W), np.zeros_like(b)) for W, b in grads]
        self.running = [(rW + W, rb + b) for (rW, rb), (W, b) in zip(self.running, grads)]
        return loss, [(W.copy(), b.copy()) for W, b in self.running]


class UpdatesParametersInPlace(Backprop):
    """Applies an SGD step to the caller's arrays inside the gradient call."""

    def __call__(self, spec, params, x, y):
        loss, grads = super().__call__(spec, params, x, y)
        for (W, b), (dW, db) in zip(params, grads):
            W -= 0.01 * dW
            b -= 0.01 * db
        return loss, grads


class NormalisesInputsInPlace(Backprop):
    def __call__(self, spec, params, x, y):
        x -= x.mean(axis=0)  # centres the caller's batch, in place
        return super().__call__(spec, params, x, y)


class NoisyGradients(Backprop):
    """Nondeterministic: an unseeded dropout-like perturbation left switched on."""

    def finish(self, loss, grads, dtype):
        rng = np.random.default_rng()
        return loss, [(W * (1 + 1e-4 * rng.standard_normal(W.shape)), b) for W, b in grads]


class Float32Inside(Backprop):
    """Claims float64 but computes in float32: float32-sized errors in float64 arrays."""

    def compute_dtype(self, x):
        return np.float32

    def finish(self, loss, grads, dtype):
        return np.float64(loss), [(W.astype(np.float64), b.astype(np.float64)) for W, b in grads]


class ReturnsFloat32(Backprop):
    """Answers a float64 request in float32: a dtype error, not a gradient error."""

    def compute_dtype(self, x):
        return np.float32


class UnstableSoftmax(Backprop):
    def softmax(self, out):
        e = np.exp(out)  # no max subtracted: overflows for logits above ~709
        return e / e.sum(axis=1, keepdims=True)


class MseMissingFactorTwo(Backprop):
    def loss_and_delta(self, spec, out, y):
        loss, delta = super().loss_and_delta(spec, out, y)
        return loss, delta / 2 if spec.loss == "mse" else delta  # d(d^2)/dd = 2d, the 2 forgotten


class MseMeanOverBatchOnly(Backprop):
    def loss_and_delta(self, spec, out, y):
        loss, delta = super().loss_and_delta(spec, out, y)
        return loss, delta * out.shape[1] if spec.loss == "mse" else delta  # /N instead of /(N*width)


class SoftmaxGradientWithoutOneHot(Backprop):
    def loss_and_delta(self, spec, out, y):
        p = self.softmax(out)
        loss = -np.log(p[np.arange(len(y)), y]).mean()
        return loss, p / len(y)  # forgot to subtract the one-hot target


class LabelsMisaligned(Backprop):
    """Sorts the labels for a 'faster' one-hot, losing their pairing with samples."""

    def loss_and_delta(self, spec, out, y):
        return super().loss_and_delta(spec, out, np.sort(y))


class CachesForwardByShape(Backprop):
    """Reuses the activations of the previous batch of the same shape."""

    def __init__(self, name=None):
        super().__init__(name)
        self.cache = {}

    def __call__(self, spec, params, x, y):
        key = (x.shape, spec)
        if key not in self.cache:
            self.cache[key] = (x.copy(), y.copy())
        return super().__call__(spec, params, *self.cache[key])


class InputGradientDividedByBatch(WithInputGradient):
    """Averages dL/dx over the batch once more, as if it needed a mean of its own."""

    def input_gradient(self, delta):
        return delta / delta.shape[0]  # delta already carries the loss's 1/N


class LossSummedNotAveraged(Backprop):
    """Reports the summed loss (what a training log may show) while its gradient is of the mean."""

    def loss_and_delta(self, spec, out, y):
        loss, delta = super().loss_and_delta(spec, out, y)
        return loss * out.shape[0], delta


class OneHotAssumesBatchSortedByClass(Backprop):
    """Builds the one-hot targets by repeating rows of the identity by class counts:
    right only for a batch grouped by class, as an unshuffled loader delivers it."""

    def loss_and_delta(self, spec, out, y):
        if spec.loss != "cross_entropy":
            return super().loss_and_delta(spec, out, y)
        n = out.shape[0]
        onehot = np.repeat(np.eye(out.shape[1], dtype=out.dtype), np.bincount(y, minlength=out.shape[1]), axis=0)
        p = self.softmax(out)
        return -(onehot * np.log(p)).sum() / n, (p - onehot) / n


class MicroBatchMeansAveraged(Backprop):
    """Splits a large batch into micro-batches of 8 and averages their mean gradients:
    right only when every micro-batch has the same size."""

    micro_batch = 8

    def __call__(self, spec, params, x, y):
        n = x.shape[0]
        if n <= self.micro_batch:
            return super().__call__(spec, params, x, y)
        parts = [super(MicroBatchMeansAveraged, self).__call__(spec, params, x[i : i + self.micro_batch], y[i : i + self.micro_batch])
                 for i in range(0, n, self.micro_batch)]
        loss = sum(p[0] for p in parts) / len(parts)  # a mean of means: short last chunk over-weighted
        grads = [tuple(sum(p[1][layer][k] for p in parts) / len(parts) for k in (0, 1)) for layer in range(len(params))]
        return loss, grads


# --- correct variants --------------------------------------------------------------


class ReluDerivativeOneAtZero(Backprop):
    """relu'(0) = 1: a different, equally valid subgradient."""

    def activation_derivative(self, name, z, a):
        if name == "relu":
            return (z >= 0).astype(z.dtype)
        if name == "leaky_relu":
            return np.where(z >= 0, 1.0, LEAKY_RELU_SLOPE).astype(z.dtype)
        return super().activation_derivative(name, z, a)


class Float32Backprop(Backprop):
    dtypes = ("float32",)


class SummationOrderVaries(Backprop):
    """Correct, but sums each bias gradient over the batch in an order that changes
    from call to call, as a library summing over a set's iteration order does: repeated
    calls differ by rounding (~1e-17), which is not a failure by default."""

    def __init__(self, name=None):
        super().__init__(name)
        self.calls = 0

    def bias_grad(self, delta):
        self.calls += 1
        order = np.roll(np.arange(delta.shape[0]), self.calls)
        return np.array([_left_to_right(delta[order, j]) for j in range(delta.shape[1])], delta.dtype)


def _left_to_right(values) -> float:
    # a plain loop: Python 3.12's sum() of floats is compensated, so its result no
    # longer depends on the order, and this bug's order would not show
    total = 0.0
    for v in values:
        total += float(v)
    return total


def sorted_by_class(case: Case) -> Case:
    """The case's batch grouped by label (ascending), as an unshuffled loader gives it."""
    order = np.argsort(case.y, kind="stable")
    # no recipe: --seed rebuilds the unsorted batch, so a repro needs the case file
    return Case(case.spec, case.params, case.x[order], case.y[order], case.seed, "sorted by class", "")


# --- the corpus ---------------------------------------------------------------------

RELU = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")
DEEP_TANH = NetworkSpec((7, 6, 5, 3), ("tanh", "tanh", "identity"), "cross_entropy")
SIGMOID_MSE = NetworkSpec((6, 5, 3), ("sigmoid", "identity"), "mse")
LEAKY = NetworkSpec((6, 5, 3), ("leaky_relu", "identity"), "cross_entropy")
RELU_MSE = NetworkSpec((6, 5, 3), ("relu", "identity"), "mse")
SQUARE = NetworkSpec((5, 5, 3), ("tanh", "identity"), "cross_entropy")


@dataclass
class Entry:
    impl: Backprop
    case_args: dict  # for make_case
    catches: tuple  # checks, any of which must FAIL; the first is the one that should
    also_at_seed_size: bool = True  # whether the bug shows in the seed's 784-500-10 relu net
    must_pass: tuple = field(default=())  # checks that must still PASS (right verdict, not just any)
    dtype: str = "float64"
    only: bool = False  # caught by catches[0] and no other check
    transform: Callable | None = None  # applied to the drawn case (e.g. sorted_by_class)

    @property
    def name(self):
        return self.impl if isinstance(self.impl, str) else self.impl.__name__

    def case(self):
        case = make_case(dtype=self.dtype, **self.case_args)
        return self.transform(case) if self.transform else case

    def seed_case(self, batch=64):
        case = make_case(SEED_SPEC, batch, self.dtype, self.case_args.get("seed", 0))
        return self.transform(case) if self.transform else case


def _c(spec, batch=6, seed=1, **kw):
    return {"spec": spec, "batch": batch, "seed": seed, **kw}


BUGS = [
    Entry(ReluDerivativeIsActivation(), _c(RELU), ("gradients_match_reference",)),
    Entry(SigmoidDerivativeMissingFactor(), _c(SIGMOID_MSE), ("gradients_match_reference",), False),
    Entry(TanhDerivativeNotSquared(), _c(DEEP_TANH), ("gradients_match_reference",), False),
    Entry(LeakyReluLeftSlopeZero(), _c(LEAKY, on_kinks=True), ("gradients_match_reference",), False),
    Entry(LeakyReluLeftSlopeOne(), _c(LEAKY), ("gradients_match_reference",), False),
    Entry(SumInsteadOfMean(), _c(RELU), ("gradients_match_reference", "batch_gradient_is_mean_of_samples")),
    Entry(MeanTakenTwice(), _c(RELU), ("gradients_match_reference", "batch_gradient_is_mean_of_samples")),
    Entry(SignFlipped(), _c(RELU), ("gradients_match_reference",)),
    Entry(WeightGradTransposed(), _c(RELU), ("gradient_shapes",)),
    Entry(BiasGradFirstSampleOnly(), _c(RELU), ("gradients_match_reference",)),
    Entry(BiasGradKeepdims(), _c(RELU), ("gradient_shapes",)),
    Entry(BiasGradZero(), _c(RELU), ("gradients_match_reference",)),
    Entry(HiddenLayerSkipsActivationDerivative(), _c(DEEP_TANH), ("gradients_match_reference",)),
    Entry(SingleElementOff(), _c(RELU, batch=8), ("gradients_match_reference", "gradient_probes")),
    Entry(GradientsAccumulateAcrossCalls(), _c(RELU), ("no_state_between_calls", "deterministic")),
    Entry(UpdatesParametersInPlace(), _c(RELU), ("inputs_not_mutated",), must_pass=("gradients_match_reference",)),
    Entry(NormalisesInputsInPlace(), _c(RELU), ("inputs_not_mutated",)),
    Entry(NoisyGradients(), _c(RELU), ("deterministic", "gradients_match_reference")),
    Entry(Float32Inside(), _c(RELU), ("gradients_match_reference",), must_pass=("gradient_dtypes",)),
    Entry(ReturnsFloat32(), _c(RELU), ("gradient_dtypes",), must_pass=("gradients_match_reference",)),
    Entry(UnstableSoftmax(), _c(RELU, logit_scale=1000.0), ("outputs_are_finite",), False),
    Entry(MseMissingFactorTwo(), _c(RELU_MSE), ("gradients_match_reference",), False),
    Entry(MseMeanOverBatchOnly(), _c(RELU_MSE), ("gradients_match_reference",), False),
    Entry(SoftmaxGradientWithoutOneHot(), _c(RELU), ("gradients_match_reference",)),
    Entry(LabelsMisaligned(), _c(RELU), ("gradients_match_reference",)),
    Entry(CachesForwardByShape(), _c(RELU), ("no_state_between_calls",)),
    # Each of these is invisible to every check but one.
    Entry(InputGradientDividedByBatch(), _c(RELU), ("input_gradient",), only=True),
    Entry(LossSummedNotAveraged(), _c(RELU), ("loss_matches_reference",), only=True),
    Entry(OneHotAssumesBatchSortedByClass(), _c(RELU), ("batch_permutation_invariant",), False, only=True,
          transform=sorted_by_class),
    Entry(MicroBatchMeansAveraged(), _c(RELU), ("batch_duplication_invariant",), False, only=True),
]

CORRECT = [
    Entry(Backprop("CorrectFloat64"), _c(RELU), ()),
    Entry(Float32Backprop("CorrectFloat32"), _c(RELU), (), dtype="float32"),
    Entry(ReluDerivativeOneAtZero(), _c(RELU, on_kinks=True), ()),
    Entry(Backprop("CorrectOnKinks"), _c(LEAKY, on_kinks=True), ()),
    Entry(Float32Backprop("CorrectFloat32OnKinks"), _c(RELU, on_kinks=True), (), dtype="float32"),
    Entry("pure-python", _c(DEEP_TANH), ()),
    Entry(WithInputGradient("CorrectWithInputGradient"), _c(DEEP_TANH), (), must_pass=("input_gradient",)),
    Entry(SummationOrderVaries(), _c(RELU, batch=16), (), must_pass=("deterministic", "no_state_between_calls")),
]
