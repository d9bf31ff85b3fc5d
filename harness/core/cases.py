"""Concrete inputs for a check: parameters, a batch and its targets, drawn from a seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.core.spec import DTYPES, NetworkSpec


@dataclass(frozen=True, eq=False)
class Case:
    """One reproducible problem: a spec, parameters ``[(W, b), ...]``, ``x`` and ``y``.

    All float arrays share one dtype, the dtype the implementation is asked to work in.
    ``y`` holds integer labels for ``cross_entropy`` and floats for ``mse``.
    """

    spec: NetworkSpec
    params: tuple[tuple[np.ndarray, np.ndarray], ...]
    x: np.ndarray
    y: np.ndarray
    seed: int | None = None
    label: str = field(default="", compare=False)
    # The CLI arguments that rebuild this case (``check --sizes ... --seed ...``).
    recipe: str = field(default="", compare=False)

    def __post_init__(self):
        if self.spec.loss == "cross_entropy":  # where labels from a caller enter: refused once, here
            check_labels(self.y, self.batch, self.spec.sizes[-1], "y")

    @property
    def dtype(self) -> str:
        return self.x.dtype.name

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def copy(self) -> Case:
        """A deep copy, so an implementation that mutates its inputs harms only the copy."""
        return Case(
            self.spec,
            tuple((W.copy(), b.copy()) for W, b in self.params),
            self.x.copy(),
            self.y.copy(),
            self.seed,
            self.label,
            self.recipe,
        )

    def astype(self, dtype: str) -> Case:
        check_dtype(dtype)
        y = self.y if self.spec.loss == "cross_entropy" else self.y.astype(dtype)
        return Case(
            self.spec,
            tuple((W.astype(dtype), b.astype(dtype)) for W, b in self.params),
            self.x.astype(dtype),
            y,
            self.seed,
            self.label,
            self.recipe.replace(f"--dtype {self.dtype}", f"--dtype {dtype}"),
        )

    def describe(self) -> str:
        text = f"{self.spec.describe()} batch={self.batch} {self.dtype}"
        if self.seed is not None:
            text += f" seed={self.seed}"
        return text + (f" [{self.label}]" if self.label else "")


def check_labels(labels, n_samples: int, n_classes: int, where: str) -> None:
    """Refuse labels that are no class index: a negative one would index from the end
    (a wrong loss and no error). ``ValueError`` of one line naming the first bad one."""
    labels = np.asarray(labels)
    if labels.shape != (n_samples,) or labels.dtype.kind not in "iu":
        raise ValueError(f"{where} is {labels.dtype} {labels.shape}, expected integer labels of shape ({n_samples},)")
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"{where}: label {labels[index]} at index {index}; expected labels 0..{n_classes - 1} "
                         f"({n_classes} classes)")


def make_case(
    spec: NetworkSpec,
    batch: int = 8,
    dtype: str = "float64",
    seed: int = 0,
    *,
    on_kinks: bool = False,
    logit_scale: float | None = None,
) -> Case:
    """Draw parameters, inputs and targets for ``spec`` from ``seed``.

    Weights use Kaiming-normal scaling (std sqrt(2/fan_in)) before ReLU-like layers and
    Xavier-normal (std sqrt(2/(fan_in+fan_out))) elsewhere, so activations stay O(1)
    at every depth; biases are small and nonzero so a bias bug is visible.

    ``on_kinks`` builds dyadic-rational weights and inputs and sets biases so that a
    fraction of the first layer's pre-activations are exactly 0.0 in both float32 and
    float64: ReLU and leaky ReLU are then evaluated exactly on their kink.
    ``logit_scale`` multiplies the last layer so the logits are large (for softmax
    overflow checks).
    """
    check_dtype(dtype)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch={batch!r}: expected an integer >= 1")
    rng = np.random.default_rng(seed)
    params = []
    for ((fan_out, fan_in), _), activation in zip(spec.shapes(), spec.activations):
        if activation in ("relu", "leaky_relu"):
            std = np.sqrt(2.0 / fan_in)
        else:
            std = np.sqrt(2.0 / (fan_in + fan_out))
        params.append([rng.normal(0.0, std, (fan_out, fan_in)), rng.normal(0.0, 0.1, fan_out)])
    x = rng.normal(0.0, 1.0, (batch, spec.sizes[0]))
    if on_kinks:
        x, params = _place_on_kinks(rng, x, params)
    if logit_scale is not None:
        params[-1][0] = params[-1][0] * logit_scale
        params[-1][1] = params[-1][1] * logit_scale
    out = spec.sizes[-1]
    if spec.loss == "cross_entropy":
        y = rng.integers(0, out, batch).astype(np.int64)
    else:
        y = rng.normal(0.0, 1.0, (batch, out)).astype(dtype)
    recipe = (
        f"--sizes {','.join(map(str, spec.sizes))} --activations {','.join(spec.activations)} "
        f"--loss {spec.loss} --batch {batch} --dtype {dtype} --seed {seed}"
        + (" --kinks" if on_kinks else "")
        + (f" --logit-scale {logit_scale:g}" if logit_scale else "")
    )
    return Case(
        spec,
        tuple((W.astype(dtype), b.astype(dtype)) for W, b in params),
        x.astype(dtype),
        y,
        seed,
        "on kinks" if on_kinks else ("large logits" if logit_scale else ""),
        recipe,
    )


def _place_on_kinks(rng, x, params):
    # Dyadic rationals (multiples of 2**-6 for W, 2**-2 for x, |values| <= 4) have
    # products and sums that are exact in float32 for fan-ins up to ~2**14, so
    # b[j] = -(x[n] @ W[j]) makes z[n, j] exactly 0.0 in float32 and float64 alike.
    W, b = params[0]
    W = np.clip(np.round(W * 64) / 64, -4, 4)
    x = np.clip(np.round(x * 4) / 4, -4, 4)
    b = np.round(b * 64) / 64
    n = rng.integers(0, x.shape[0], W.shape[0])
    chosen = rng.random(W.shape[0]) < 0.5
    b = np.where(chosen, -np.einsum("jk,jk->j", x[n], W), b)
    params[0] = [W, b]
    return x, params


def check_dtype(dtype):
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
