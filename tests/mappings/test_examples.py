"""The NumPy example mappings are correct: every check passes on every case, in both dtypes."""

import pytest

from harness.checks.mapping_runner import check_mapping
from harness.mappings.examples import EXAMPLES


@pytest.mark.parametrize("mapping", EXAMPLES, ids=lambda m: m.name)
def test_every_example_passes_every_check(mapping):
    results = check_mapping(mapping)
    assert all(r.ok for r in results), "\n".join(r.describe() for r in results if not r.ok)
    assert sum(r.verdict.value == "PASS" for r in results) >= 6 * len({r.case for r in results})
