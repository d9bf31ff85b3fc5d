"""Helpers the provider tests share: an operator checked for a provider on its record's
sample cases -- every result passing and something judged -- or its failures listed."""

from __future__ import annotations

import harness
from harness import ops
from harness.core.results import Verdict


def assert_passes(op_name: str, provider: str, dtype: str | None = None):
    results = harness.check(ops.mapping(op_name, provider), dtype=dtype)
    judged = [r for r in results if r.verdict is Verdict.PASS]
    bad = [f"{r.check} [{r.case}] {r.verdict.name}: {r.message}" for r in results if not r.ok]
    assert judged and not bad, "\n".join(bad[:5])
    return results


def failures(op_name: str, provider: str) -> set[tuple[str, str]]:
    """``{(check, case)}`` of every result that is not ok."""
    return {(r.check, r.case) for r in harness.check(ops.mapping(op_name, provider)) if not r.ok}
