"""The engine: the checker catches real bugs with the right verdict, and flags no
correct variant; an implementation that raises is an ERROR, an unsupported case a SKIP.

Every entry of ``tests/corpus.py`` is a realistic mistake; each must be caught by the
check that names it, on a small case and (where the bug shows there) at the seed's
784-500-10 size.
"""

import numpy as np
import pytest

from harness import run_checks
from harness.checks import ALL_CHECKS, check_name
from harness.checks.contracts import CONTRACT_CHECKS
from harness.checks.properties import PROPERTY_CHECKS
from harness.checks.values import VALUE_CHECKS
from harness.core.results import Verdict
from tests import corpus


def _by_check(results):
    return {r.check: r for r in results}


@pytest.mark.parametrize("entry", corpus.BUGS, ids=lambda e: e.name)
def test_each_bug_is_caught_by_its_check(entry):
    results = _by_check(run_checks(entry.impl, entry.case()))
    caught = results[entry.catches[0]]
    assert caught.verdict is Verdict.FAIL, caught.describe()
    where = "--case-file" if entry.transform else "--sizes"  # a transformed case is not rebuilt by its seed
    assert caught.repro.startswith(f"backprop-harness check --impl tests.corpus:{entry.name} {where}")
    assert caught.message
    for name in entry.must_pass:
        assert results[name].verdict is Verdict.PASS, results[name].describe()


@pytest.mark.parametrize("entry", [e for e in corpus.BUGS if e.only], ids=lambda e: e.name)
def test_bugs_only_one_check_can_see_are_caught_by_exactly_that_check(entry):
    results = run_checks(entry.impl, entry.case())
    assert {r.check for r in results if not r.ok} == {entry.catches[0]}, "\n".join(r.describe() for r in results if not r.ok)


@pytest.mark.parametrize("entry", [e for e in corpus.BUGS if e.also_at_seed_size], ids=lambda e: e.name)
def test_each_bug_is_caught_at_seed_size(entry):
    # the checks that name the bug, at 784-500-10 (397,510 parameters), batch 16
    checks = [c for c in ALL_CHECKS if c.__name__.removeprefix("check_") in entry.catches]
    results = run_checks(entry.impl, entry.seed_case(batch=16), checks=checks)
    assert any(r.verdict is Verdict.FAIL for r in results), "\n".join(r.describe() for r in results)


@pytest.mark.parametrize("entry", corpus.CORRECT, ids=lambda e: e.name)
def test_no_correct_variant_is_flagged(entry):
    results = _by_check(run_checks(entry.impl, entry.case()))
    for result in results.values():
        assert result.verdict in (Verdict.PASS, Verdict.SKIP), result.describe()
    for name in entry.must_pass:
        assert results[name].verdict is Verdict.PASS, results[name].describe()


def test_implementation_that_raises_is_an_error_not_a_crash():
    def broken(spec, params, x, y):
        raise RuntimeError("shape mismatch in layer 2")

    results = run_checks(broken, corpus.Entry(None, corpus._c(corpus.RELU), ()).case())
    ran = [r for r in results if r.verdict is not Verdict.SKIP]
    assert ran and all(r.verdict is Verdict.ERROR for r in ran)
    assert "RuntimeError: shape mismatch in layer 2" in results[0].message


def test_unsupported_case_is_skipped_with_the_reason():
    def only_tanh(spec, params, x, y):
        raise AssertionError("must not be called")

    only_tanh.activations = ("tanh", "identity")
    results = run_checks(only_tanh, corpus.Entry(None, corpus._c(corpus.RELU), ()).case())
    assert [r.verdict for r in results] == [Verdict.SKIP]
    assert "relu not supported" in results[0].message


def test_degenerate_cases_found_by_the_conformance_suite_do_not_false_alarm():
    from harness.core.cases import Case, make_case
    from harness.core.spec import NetworkSpec

    # all zeros: the true directional derivative is exactly 0, the complex step's is O(h^2)
    spec = NetworkSpec((1, 1, 1), ("identity", "identity"), "mse")
    zeros = Case(spec, ((np.zeros((1, 1)), np.zeros(1)),) * 2, np.zeros((1, 1)), np.zeros((1, 1)))
    # one class: every cross-entropy gradient is 0, so B's answer equals A's by right
    one_class = make_case(NetworkSpec((1, 1), ("identity",), "cross_entropy"), 1, seed=3)
    for case in (zeros, one_class):
        for result in run_checks(corpus.Backprop(), case):
            assert result.verdict in (Verdict.PASS, Verdict.SKIP), result.describe()
    # while a stale answer on a case where A and B differ is still caught
    stale = _by_check(run_checks(corpus.CachesForwardByShape(), corpus.Entry(None, corpus._c(corpus.RELU), ()).case()))
    assert stale["no_state_between_calls"].verdict is Verdict.FAIL


def test_every_check_is_listed_once_contracts_first():
    names = [check_name(c) for c in ALL_CHECKS]
    assert len(set(names)) == len(names) == 13
    assert names[: len(CONTRACT_CHECKS)] == [check_name(c) for c in CONTRACT_CHECKS]
    assert set(names) == {check_name(c) for c in CONTRACT_CHECKS + VALUE_CHECKS + PROPERTY_CHECKS} | {"gradient_probes"}
    assert all(c.__doc__ for c in ALL_CHECKS)  # the conformance suite shows them as test docstrings


def test_output_a_check_cannot_read_is_the_implementations_error_never_an_exception():
    def returns_text(spec, params, x, y):
        return "0.5", [("dW", "db")]

    case = corpus.Entry(None, corpus._c(corpus.RELU), ()).case()
    results = _by_check(run_checks(returns_text, case))
    finite = results["outputs_are_finite"]
    assert finite.verdict is Verdict.ERROR
    assert finite.message.startswith("could not evaluate the output: check raised TypeError")
    assert finite.seconds > 0 and finite.repro
    assert results["gradient_shapes"].verdict is Verdict.FAIL  # the checks that can read it still judge it
    assert results["gradients_match_reference"].verdict is Verdict.SKIP


def test_run_checks_runs_the_checks_asked_for_in_their_order():
    case = corpus.Entry(None, corpus._c(corpus.RELU), ()).case()
    chosen = [ALL_CHECKS[3], ALL_CHECKS[0]]
    assert [r.check for r in run_checks(corpus.Backprop(), case, checks=chosen)] == [check_name(c) for c in chosen]


def test_an_unavailable_implementation_is_skipped_with_its_reason():
    from tests.conformance_impls import Unavailable

    case = corpus.Entry(None, corpus._c(corpus.RELU), ()).case()
    (result,) = run_checks(Unavailable(), case)
    assert result.check == "applicable" and result.verdict is Verdict.SKIP
    assert result.message == "needs hardware this machine lacks"
