"""The network every implementation differentiates: layer widths, activations, loss."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "identity")
LOSSES = ("cross_entropy", "mse")
DTYPES = ("float32", "float64")
LEAKY_RELU_SLOPE = 0.01

# Activations with a kink at 0, and their (left, right) slopes there.
KINKED = {"relu": (0.0, 1.0), "leaky_relu": (LEAKY_RELU_SLOPE, 1.0)}


@dataclass(frozen=True)
class NetworkSpec:
    """A sequential network: ``sizes[i] -> sizes[i+1]`` through ``activations[i]``.

    Layer ``i`` computes ``z = x @ W.T + b`` with ``W`` shaped ``(sizes[i+1], sizes[i])``
    (as ``torch.nn.Linear``) and ``a = activations[i](z)``; ``loss`` is applied to the
    last ``a`` (for ``cross_entropy`` the last activation is usually ``identity``:
    the softmax belongs to the loss).
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "cross_entropy"

    def __post_init__(self):
        sizes = _as_tuple("sizes", self.sizes)
        activations = _as_tuple("activations", self.activations)
        if len(sizes) < 2:
            raise ValueError(f"sizes={sizes!r}: expected at least two layer widths (input and output)")
        for width in sizes:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"sizes={sizes!r}: width {width!r} is not an integer >= 1")
        if len(activations) != len(sizes) - 1:
            raise ValueError(
                f"activations={activations!r}: expected {len(sizes) - 1} (one per layer "
                f"for sizes={sizes!r}), got {len(activations)}"
            )
        for name in activations:
            if name not in ACTIVATIONS:
                raise ValueError(f"activations: unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: unknown loss; allowed: {', '.join(LOSSES)}")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", activations)

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        return sum(o * i + o for i, o in zip(self.sizes, self.sizes[1:]))

    def multiply_adds(self, batch: int) -> int:
        """Multiply-adds of one forward pass at ``batch`` (the backward costs about twice as many)."""
        return batch * sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))

    def shapes(self) -> list[tuple[tuple[int, int], tuple[int]]]:
        """``[(W shape, b shape), ...]`` per layer."""
        return [((o, i), (o,)) for i, o in zip(self.sizes, self.sizes[1:])]

    def describe(self) -> str:
        return f"{'-'.join(map(str, self.sizes))} {','.join(self.activations)} {self.loss}"

    @classmethod
    def parse(cls, sizes: str, activations: str, loss: str) -> NetworkSpec:
        """Build a spec from CLI-style strings: ``"784,500,10"``, ``"relu,identity"``.

        A single activation is repeated for every layer.
        """
        try:
            widths = tuple(int(s) for s in sizes.split(","))
        except ValueError:
            raise ValueError(f"sizes={sizes!r}: expected comma-separated integers such as 784,500,10") from None
        names = tuple(a.strip() for a in activations.split(","))
        if len(names) == 1:
            names = names * (len(widths) - 1)
        return cls(widths, names, loss)


def _as_tuple(field, value):
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{field}={value!r}: expected a sequence")
    return tuple(int(v) if field == "sizes" and _is_integral(v) else v for v in value)


def _is_integral(v):
    try:
        import numpy as np

        return isinstance(v, np.integer)
    except ImportError:  # pragma: no cover
        return False


SEED_SPEC = NetworkSpec((784, 500, 10), ("relu", "identity"), "cross_entropy")
