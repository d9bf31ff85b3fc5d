"""Which cases run for an implementation: the one planner behind ``harness.check()``,
``backprop-harness check``, the conformance suite and the asv suite.

Everything is decided from declared capabilities, never from names: the dtypes an
implementation declares, what it supports, ``max_multiply_adds`` (a step too costly
for a selection made on the user's behalf) and ``compiles_per_shape`` (a few fixed
shapes for property-based runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.cases import Case, make_case
from harness.core.protocol import Implementation, availability
from harness.core.spec import SEED_SPEC, NetworkSpec

# Small networks cover every activation (hidden and output), both losses, depth 3,
# ReLU and leaky ReLU exactly on their kinks, and logits large enough to overflow a
# naive softmax; the seed's 784-500-10 network closes the battery.
SMALL = (
    (NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), {}),
    (NetworkSpec((6, 5, 3), ("leaky_relu", "identity"), "cross_entropy"), {}),
    (NetworkSpec((6, 5, 3), ("sigmoid", "identity"), "mse"), {}),
    (NetworkSpec((6, 5, 3), ("tanh", "tanh"), "mse"), {}),
    (NetworkSpec((6, 5, 3), ("identity", "sigmoid"), "cross_entropy"), {}),
    (NetworkSpec((7, 6, 5, 3), ("relu", "tanh", "identity"), "cross_entropy"), {}),
    (NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), {"on_kinks": True}),
    (NetworkSpec((6, 5, 3), ("leaky_relu", "leaky_relu"), "mse"), {"on_kinks": True}),
    (NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), {"logit_scale": 1000.0}),
)
SMALL_BATCH = 5
SEED_BATCH = 64

# For implementations that compile per shape: one network per loss, one batch size,
# so each process compiles 2 specs x (batch N, 1 and 2N: the property checks call
# single samples and the doubled batch) per dtype. Between them they cover a kinked,
# a smooth and the identity activation.
COMPILED_SHAPES = (
    (NetworkSpec((4, 3, 3), ("relu", "identity"), "cross_entropy"), 2),
    (NetworkSpec((3, 4, 2), ("tanh", "sigmoid"), "mse"), 2),
)


def battery(dtype: str = "float64", seed: int = 0) -> list[Case]:
    """The default cases in ``dtype``: every small network, then the seed's."""
    cases = [make_case(spec, SMALL_BATCH, dtype, seed, **kw) for spec, kw in SMALL]
    cases.append(make_case(SEED_SPEC, SEED_BATCH, dtype, seed))
    return cases


@dataclass
class PlannedRun:
    """One implementation on one case, or why it does not run (``skip``). A skip is a
    failure (``failed``) when the implementation was named and cannot run at all."""

    impl: Implementation
    case: Case | None = None
    case_label: str = "-"
    skip: str = ""
    failed: bool = False


def plan(impls, *, named: bool, case: Case | None = None, dtypes=None, seed: int = 0, device: str | None = None) -> list[PlannedRun]:
    """The runs for ``impls``: ``case`` alone, or the battery in every dtype each
    implementation declares (``dtypes`` narrows them). From the battery, a case whose
    step exceeds the implementation's ``max_multiply_adds`` is left out and says so;
    an implementation unavailable on ``device`` is left out, and when it was
    ``named`` that is a failure."""
    runs = []
    for impl in impls:
        reason = availability(impl, device)
        if reason:
            runs.append(PlannedRun(impl, skip=f"unavailable: {reason}", failed=named))
            continue
        if case is not None:
            runs.append(PlannedRun(impl, case, case.describe()))
            continue
        declared = sorted(impl.capabilities.dtypes, reverse=True)  # float64 first
        chosen = [d for d in (dtypes or declared) if d in declared]
        if not chosen:  # say why nothing runs, rather than nothing at all
            runs.append(PlannedRun(impl, skip=f"left out: dtype {', '.join(dtypes)} not declared (it declares {', '.join(declared)})"))
        for dtype in chosen:
            for c in battery(dtype, seed):
                slow = impl.capabilities.too_slow(c.spec, c.batch)
                runs.append(PlannedRun(impl, None if slow else c, c.describe(), f"left out: {slow}" if slow else ""))
    return runs


def left_out(impl: Implementation, spec: NetworkSpec, dtype: str, batch: int, *, device: str | None = None,
             budget: bool = True) -> str | None:
    """Why ``impl`` does not run ``spec`` at ``batch`` in ``dtype`` in a selection made
    on the user's behalf (unavailable, unsupported, or, with ``budget``, too slow)."""
    return (availability(impl, device) or impl.capabilities.unsupported(spec, dtype)
            or (impl.capabilities.too_slow(spec, batch) if budget else None))


def fixed_shapes(impl: Implementation) -> list[tuple[NetworkSpec, int]] | None:
    """The (network, batch) pairs property-based runs keep to for ``impl``, or ``None``
    when any shape will do (it does not compile per shape)."""
    caps = impl.capabilities
    if not caps.compiles_per_shape:
        return None
    dtype = "float64" if "float64" in caps.dtypes else "float32"
    return [(s, n) for s, n in COMPILED_SHAPES if caps.unsupported(s, dtype) is None]
