"""The default battery as test parameters, and the assertion that an implementation
passes every applicable check on a case (shared by the built-ins' test files)."""

import pytest

from harness import run_checks
from harness.checks import planner
from harness.core.results import Verdict
from harness.core.spec import SEED_SPEC


def assert_passes(name, case):
    results = run_checks(name, case)
    assert results and results[0].check != "applicable", results[0].message
    for r in results:
        assert r.verdict in (Verdict.PASS, Verdict.SKIP), r.describe()


def battery(dtypes, *, seed_size=True):
    """The planner's battery in ``dtypes`` as pytest parameters (without the seed's
    784-500-10 network unless ``seed_size``)."""
    return [
        pytest.param(c, id=f"{c.describe()}")
        for d in dtypes
        for c in planner.battery(d)
        if seed_size or c.spec != SEED_SPEC
    ]
