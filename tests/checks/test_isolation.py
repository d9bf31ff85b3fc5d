"""An isolated run reports a raising, hanging or crashing implementation as ERROR,
TIMEOUT or CRASHED, and the run goes on with the others."""

import time

import pytest

from harness import run_checks
from harness.checks.isolation import reference_for, run_checks_isolated
from harness.core.cases import make_case
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from tests import isolation_impls

MODULE = isolation_impls.__name__
CASE = make_case(NetworkSpec((4, 3, 2), ("relu", "identity")), 3, "float64", 0)


def _verdicts(results):
    return {r.verdict for r in results}


def test_a_raising_implementation_is_an_error_on_every_check():
    results = run_checks_isolated(f"{MODULE}:raises", CASE, timeout=60)
    # input_gradient is SKIP: a plain function declares no input gradient.
    assert len(results) > 1 and _verdicts(results) == {Verdict.ERROR, Verdict.SKIP}
    assert sum(r.verdict is Verdict.ERROR for r in results) == len(results) - 1
    assert "deliberately broken" in results[0].message


def test_a_hanging_implementation_times_out_and_is_killed():
    start = time.perf_counter()
    (result,) = run_checks_isolated(f"{MODULE}:hangs", CASE, timeout=3)
    assert result.verdict is Verdict.TIMEOUT
    assert "3 s" in result.message and "--isolate" in result.repro
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize(("attr", "why"), [("exits", "exit status 7"), ("segfaults", "SIGSEGV")])
def test_an_implementation_that_kills_its_interpreter_is_crashed(attr, why):
    (result,) = run_checks_isolated(f"{MODULE}:{attr}", CASE, timeout=60)
    assert result.verdict is Verdict.CRASHED
    assert why in result.message


def test_an_isolated_run_returns_the_same_records_as_an_in_process_run():
    isolated = run_checks_isolated("numpy", CASE, timeout=120)
    direct = run_checks("numpy", CASE)
    assert [(r.check, r.verdict, r.message) for r in isolated] == [(r.check, r.verdict, r.message) for r in direct]
    worst = next(r for r in isolated if r.check == "gradients_match_reference").tensors
    assert [t.name for t in worst] == ["layer 0 W", "layer 0 b", "layer 1 W", "layer 1 b"]


def test_an_implementation_the_child_cannot_import_is_an_error():
    (result,) = run_checks_isolated("no_such_module_xyz:f", CASE, timeout=60)
    assert result.verdict is Verdict.ERROR
    assert "no_such_module_xyz" in result.message


def test_a_local_function_cannot_be_isolated_and_says_why():
    def local(spec, params, x, y):  # not importable by a child interpreter
        raise AssertionError

    with pytest.raises(ValueError, match="module:attr"):
        reference_for(local)
