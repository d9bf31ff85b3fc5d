"""The default cases ``check`` runs when none is selected."""

from __future__ import annotations

from harness.cases import Case, make_case
from harness.spec import SEED_SPEC, NetworkSpec

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

# A pure-Python step at 784-500-10, batch 64, takes seconds and the properties need
# ~70 of them, so the battery leaves the seed size out for it (and says so).
SLOW_AT_SEED_SIZE = {"pure-python"}


def default_cases(dtype: str = "float64", seed: int = 0) -> list[Case]:
    cases = [make_case(spec, SMALL_BATCH, dtype, seed, **kw) for spec, kw in SMALL]
    cases.append(make_case(SEED_SPEC, SEED_BATCH, dtype, seed))
    return cases


def is_seed_size(case: Case) -> bool:
    return case.spec.sizes == SEED_SPEC.sizes
