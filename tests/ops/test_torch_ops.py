"""The PyTorch autograd provider offers every operator of the catalogue, and each passes
the mapping checks on its record's samples in float32 and float64 -- including the two
places where torch's rounding is amplified by 1/sqrt(variance + eps) (layer_norm of width
1, batch_norm over 2 samples): their records declare the terms their backward cancels
(tests/checks/test_mapping_declared_terms.py shows bugs there still caught)."""

import pytest

from harness import ops
from harness.ops.catalog import RECORDS
from tests.ops.checking import assert_passes

pytest.importorskip("torch")


def test_the_torch_provider_offers_every_operator():
    assert set(ops.provider("torch").operators) == set(RECORDS)


# (operator, case label): where torch's rounding is amplified, judged (PASS), not skipped
AMPLIFIED = {"layer_norm": "H = 1: output is beta", "batch_norm": "a batch of 2"}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_every_torch_operator_passes_on_its_samples(name):
    results = assert_passes(name, "torch")
    if name in AMPLIFIED:
        label = AMPLIFIED[name]
        judged = {(r.check, r.case.split(" (")[0]) for r in results if r.verdict.name == "PASS"}
        wanted = {(check, f"{label} {dtype}") for check in ("vjp_matches_oracle", "vjp_probes", "jvp_vjp_transpose")
                  for dtype in ("float32", "float64")}
        assert wanted <= judged, sorted(wanted - judged)
