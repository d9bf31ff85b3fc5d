"""One record per operator (PyTorch's OpInfo in shape, not in size): its name, what it
computes, its float64 reference forward, how sample inputs are drawn and its hand-made
hard cases, the dtypes it is checked in, which inputs get no gradient, and its default
parameters. Who computes the forward and backward is a provider's business
(``harness.ops.registry``): a record says what any of them must agree with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.mapping import MAPPING_DTYPES, Input


@dataclass(frozen=True)
class OpRecord:
    """An operator: ``reference(*inputs, **params)`` is its float64 forward (what every
    provider's forward is compared with and the oracle differentiates); ``inputs``
    describe how random, kink, tie, large, single-sample and width-1 cases are drawn;
    ``samples(rng, dtype)`` adds hand-made cases ``[(inputs, params, label), ...]``;
    ``input_names`` label the inputs, and the ``int`` ones (indices, labels) are the
    non-differentiable inputs. ``vjp_terms`` and ``jvp_terms``: where a correct backward's
    terms cancel, their absolute sizes (``harness.core.mapping.Mapping``)."""

    name: str
    summary: str
    reference: Callable
    inputs: tuple[Input, ...]
    samples: Callable
    input_names: tuple[str, ...]
    params: dict = field(default_factory=dict)
    dtypes: tuple[str, ...] = MAPPING_DTYPES
    vjp_terms: Callable | None = None
    jvp_terms: Callable | None = None

    def __post_init__(self):
        if len(self.input_names) != len(self.inputs):
            raise ValueError(f"operator {self.name!r}: {len(self.input_names)} input names for {len(self.inputs)} inputs")
        unknown = [d for d in self.dtypes if d not in MAPPING_DTYPES]
        if unknown:
            raise ValueError(f"operator {self.name!r}: dtypes {unknown} not among {MAPPING_DTYPES}")

    @property
    def nondifferentiable(self) -> tuple[str, ...]:
        """The inputs that get no gradient (integer indices and labels)."""
        return tuple(name for name, spec in zip(self.input_names, self.inputs) if not spec.differentiable)
