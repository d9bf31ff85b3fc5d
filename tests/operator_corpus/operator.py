"""The corpus entry (an operator class, its dtype, the checks that must flag it) and the
bridge to ``harness.Mapping``. The correct operators and the ``Operator`` class they are
written as live in the package (``harness.ops.numpy_*``): the built-in NumPy provider;
the corpus's bugs and variants subclass them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.ops.numpy_operator import In, Operator, as_dtype, as_mapping, grid, normal, single, widened

__all__ = ["Entry", "In", "Operator", "as_dtype", "grid", "mapping", "normal", "single", "widened"]


def mapping(operator: Operator, dtype: str = "float64", samples=None):
    """``operator`` as a ``harness.Mapping`` running in ``dtype``; ``samples`` replaces the
    operator's own sample cases (e.g. one large case)."""
    return as_mapping(operator, (dtype,), samples=samples)


@dataclass(frozen=True)
class Entry:
    """One corpus entry: an operator class, the dtype it runs in, and -- for a bug -- the
    checks of THE CONTRACT that must flag it (the first is the one that should: the
    check whose job the mistake is); a correct variant has ``catches == ()``."""

    operator: type[Operator]
    catches: tuple[str, ...] = ()
    dtype: str = "float64"

    @property
    def name(self) -> str:
        return self.operator.name if self.dtype == "float64" else f"{self.operator.name}[{self.dtype}]"

    @property
    def is_bug(self) -> bool:
        return bool(self.catches)

    @property
    def mistake(self) -> str:
        """The one-line comment: what the operator gets wrong (or why it is correct)."""
        return (self.operator.__doc__ or "").strip().splitlines()[0]

    def fresh(self) -> Operator:
        """A new instance: state bugs keep state on the instance, so no two uses share one."""
        return self.operator()

    def mapping(self):
        return mapping(self.fresh(), self.dtype)

    def cases(self, seed: int = 0) -> list:
        return self.fresh().samples(np.random.default_rng(seed), np.dtype(self.dtype))
