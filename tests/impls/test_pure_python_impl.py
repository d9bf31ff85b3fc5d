"""The pure-Python built-in: passes the battery's small cases, never calls NumPy inside
the step, and each op pair agrees with the NumPy it replaces."""

import sys

import pytest

from harness.core.cases import make_case
from harness.core.registry import implementations
from harness.core.spec import NetworkSpec
from tests.impls.battery import assert_passes, battery


@pytest.mark.parametrize("case", battery(["float64"], seed_size=False))
def test_pure_python_passes_the_battery(case):
    assert_passes("pure-python", case)


def test_the_seed_network_is_beyond_its_declared_budget_and_the_small_ones_within():
    from harness.core.spec import SEED_SPEC

    caps = implementations()["pure-python"].capabilities
    assert caps.too_slow(SEED_SPEC, 64) is not None
    assert caps.too_slow(NetworkSpec((7, 6, 5, 3), ("relu", "tanh", "identity")), 5) is None


def test_pure_python_step_calls_no_numpy():
    case = make_case(NetworkSpec((5, 4, 3), ("sigmoid", "identity"), "cross_entropy"), 3)
    prepared = implementations()["pure-python"].prepare(case.spec, case.params)
    batch = prepared.batch(case.x, case.y)
    seen = set()

    def profile(frame, event, arg):
        if event == "c_call":
            seen.add(getattr(arg, "__module__", None) or "")
        elif event == "call":
            seen.add(frame.f_globals.get("__name__", ""))

    sys.setprofile(profile)
    try:
        loss, grads, dx = prepared.step(batch)
    finally:
        sys.setprofile(None)
    assert not [m for m in seen if m.startswith("numpy")], seen
    assert isinstance(loss, float) and isinstance(grads[0][0], list) and isinstance(grads[0][0][0], list)
