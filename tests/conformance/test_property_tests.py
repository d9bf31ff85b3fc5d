"""One check as a hypothesis property: subjects resolved once (named ones fail when they
cannot run, discovered ones skip), a failure raised with the full report and a saved
case file that reproduces it, a skip when the check never applied, and the decorator
that puts the suite in a third party's tests."""

import textwrap

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from harness.checks import ALL_CHECKS, check_name
from harness.checks.contracts import check_gradient_shapes
from harness.checks.values import check_gradients_match_reference, check_input_gradient
from harness.conformance import property_tests
from harness.conformance.property_tests import (
    ConformanceFailure,
    Subject,
    check_once,
    parametrize_with_checks,
    property_test,
    run_subject,
    subject,
)
from harness.core.case_files import load_case
from harness.core.cases import Case, make_case
from harness.core.protocol import as_implementation
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from harness.workers.remote import WorkerImplementation
from tests import conformance_impls

pytest_plugins = ["pytester"]

QUICK = settings(max_examples=5, database=None, deadline=None)
UNSHRUNK = settings(QUICK, phases=[Phase.generate])  # a failure is reported as found: fast
CASE = make_case(NetworkSpec((4, 3, 2), ("relu", "identity"), "cross_entropy"), 3, seed=1)


def _check_once(impl, check, case):
    """``check_once`` where it runs: inside a hypothesis test (it records the case as a note)."""
    results = []

    @settings(max_examples=1, database=None, deadline=None)
    @given(st.just(case))
    def once(case):
        results.append(check_once(as_implementation(impl), check, case))

    once()
    return results[-1]


@pytest.fixture(autouse=True)
def _cases_in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv(property_tests.CASE_DIR_VARIABLE, str(tmp_path / "cases"))


# --- subjects ---------------------------------------------------------------------------------


def test_a_subject_is_resolved_once_and_says_why_it_cannot_run():
    ok = subject("numpy")
    assert (ok.name, ok.problem, ok.explicit) == ("numpy", "", True) and ok.impl.name == "numpy"
    assert isinstance(ok.impl, WorkerImplementation)  # loaded in a worker process, not here
    # one that cannot even load in its worker is a broken install: it fails, named or not
    unknown = subject("no-such-impl", explicit=False)
    assert unknown.impl is None and "no implementation of that name" in unknown.problem and unknown.explicit
    missing = subject(conformance_impls.Unavailable)
    assert missing.name == "never-available"
    assert missing.problem == "never-available is unavailable: needs hardware this machine lacks"
    for s in (ok, missing):
        s.impl.close()


def test_in_process_a_subject_is_resolved_here_and_an_unknown_discovered_one_skips():
    ok = subject("numpy", in_process=True)
    assert not isinstance(ok.impl, WorkerImplementation) and ok.problem == ""
    unknown = subject("no-such-impl", explicit=False, in_process=True)
    assert unknown.impl is None and "no implementation of that name" in unknown.problem and not unknown.explicit


def test_a_named_subject_that_cannot_run_fails_and_a_discovered_one_skips():
    with pytest.raises(pytest.fail.Exception, match="named explicitly, so this is a failure, not a skip"):
        run_subject(check_gradient_shapes, Subject("gone", None, "gone is unavailable: no GPU", explicit=True))
    with pytest.raises(pytest.skip.Exception, match="gone is unavailable: no GPU"):
        run_subject(check_gradient_shapes, Subject("gone", None, "gone is unavailable: no GPU", explicit=False))


# --- one case ----------------------------------------------------------------------------------


def test_a_passing_case_returns_its_result_and_saves_nothing(tmp_path):
    result = _check_once(conformance_impls.correct, check_gradients_match_reference, CASE)
    assert result.verdict is Verdict.PASS
    assert not (tmp_path / "cases").exists()


def test_a_failing_case_raises_the_report_and_saves_the_case_it_names(tmp_path):
    with pytest.raises(ConformanceFailure) as info:
        _check_once(conformance_impls.bias_gradient_summed, check_gradients_match_reference, CASE)
    report = str(info.value)
    assert report.startswith("gradients_match_reference FAIL: tests.conformance_impls:bias_gradient_summed")
    repro = report.split("reproduce: ", 1)[1].strip()
    path = repro.split("--case-file ", 1)[1]
    assert repro.startswith("backprop-harness check --impl tests.conformance_impls:bias_gradient_summed --case-file ")
    assert path.startswith(str(tmp_path / "cases")) and "gradients_match_reference" in path
    saved = load_case(path)
    np.testing.assert_array_equal(saved.x, CASE.x)
    for (W, b), (W2, b2) in zip(saved.params, CASE.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_the_same_case_is_saved_under_the_same_name():
    paths = []
    for case in (CASE, CASE.copy()):
        with pytest.raises(ConformanceFailure) as info:
            _check_once(conformance_impls.bias_gradient_summed, check_gradients_match_reference, case)
        paths.append(str(info.value).split("--case-file ", 1)[1].strip())
    assert paths[0] == paths[1]


# --- the property ----------------------------------------------------------------------------------


def test_a_correct_implementation_satisfies_the_property():
    property_test(check_gradients_match_reference, conformance_impls.correct, settings=QUICK)()


def test_a_broken_implementation_fails_the_property_with_its_report():
    # The bias gradient summed over the batch is right wherever the bias gradients are all
    # zero (batch 1, one output class, saturated logits all predicted right): five random
    # examples were all such cases in 3 % of runs (twice in one .ci/run), so this test
    # draws 25, derandomized (the same every run)
    found = settings(UNSHRUNK, max_examples=25, derandomize=True)
    run = property_test(check_gradients_match_reference, "tests.conformance_impls:bias_gradient_summed", settings=found)
    with pytest.raises(ConformanceFailure, match="gradients_match_reference FAIL"):
        run()


def test_a_check_that_applied_to_no_drawn_case_is_a_skip_saying_why():
    run = property_test(check_input_gradient, conformance_impls.correct, settings=QUICK)
    with pytest.raises(pytest.skip.Exception, match="input_gradient applied to none of the drawn cases: "
                                                    "the implementation does not declare input_grad"):
        run()


# --- the decorator ------------------------------------------------------------------------------------


def test_parametrize_with_checks_makes_one_test_per_implementation_and_check():
    mark = parametrize_with_checks([conformance_impls.correct, "numpy"])
    argnames, params = mark.args
    assert argnames == ("impl", "check") and len(params) == 2 * len(ALL_CHECKS)
    ids = [p.id for p in params]
    assert ids[0] == f"tests.conformance_impls:correct-{check_name(ALL_CHECKS[0])}"
    assert f"numpy-{check_name(ALL_CHECKS[-1])}" in ids
    assert params[0].values[1].__name__ == check_name(ALL_CHECKS[0])


def test_parametrize_with_checks_wants_a_list():
    with pytest.raises(TypeError, match="expected a list of implementations"):
        parametrize_with_checks("numpy")


IMPLS = textwrap.dedent('''
    from harness.core import reference
    from harness.core.protocol import Implementation

    def correct(spec, params, x, y):
        return reference.loss_and_grads(spec, params, x, y)

    def bias_summed(spec, params, x, y):
        loss, grads = correct(spec, params, x, y)
        return loss, [(dW, db * len(x)) for dW, db in grads]

    class Unavailable(Implementation):
        name = "never-available"
        def unavailable_reason(self, device=None):
            return "needs hardware this machine lacks"
        def prepare(self, spec, params, *, dtype="float64", device=None):
            raise AssertionError("prepared although unavailable")
''')


def test_parametrize_with_checks_puts_the_suite_in_a_third_partys_tests(pytester, monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "dev")
    pytester.makepyfile(myimpls=IMPLS)
    pytester.makepyfile(test_mine=textwrap.dedent('''
        import harness
        import myimpls

        @harness.parametrize_with_checks([myimpls.correct, "myimpls:bias_summed", "myimpls:Unavailable"])
        def test_mine(impl, check):
            check(impl)
    '''))
    result = pytester.runpytest_subprocess("-k", "gradients_match_reference", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "reproduce: backprop-harness check --impl myimpls:bias_summed --case-file" in out
    assert "needs hardware this machine lacks" in out


# --- a plug-in that leaves ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exits_0", "raises_keyboard_interrupt"])
def test_a_plug_in_that_exits_fails_its_own_test_and_pytest_goes_on(name):
    run = property_test(check_gradient_shapes, f"tests.fault_impls:{name}", settings=UNSHRUNK)
    with pytest.raises(ConformanceFailure, match=r"gradient_shapes ERROR: .* step raised (SystemExit: 0|KeyboardInterrupt)"):
        run()


def test_a_plug_in_that_exits_on_import_is_a_failing_subject_not_the_end_of_collection(tmp_path, monkeypatch):
    (tmp_path / "leaves_on_import.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = subject("leaves_on_import:backprop")
    assert broken.impl is None and "cannot import module 'leaves_on_import': SystemExit: 0" in broken.problem
    with pytest.raises(pytest.fail.Exception, match="it was named explicitly, so this is a failure"):
        run_subject(check_gradient_shapes, broken)


def test_a_drawn_case_the_dtype_cannot_judge_judges_nothing_either_way():
    # INCONCLUSIVE cases are set aside like SKIPs: the property neither fails on them nor passes by them
    # logits (40, 0, ..., 0) with the label on the 40: every gradient is ~e^-40, below float64's rounding of it
    W, b = np.zeros((6, 2)), np.zeros(6)
    W[0, 0] = 4.0
    saturated = Case(NetworkSpec((2, 6), ("identity",), "cross_entropy"), ((W, b),), np.array([[10.0, 1.0]]), np.array([0]))
    result = _check_once(conformance_impls.correct, check_gradients_match_reference, saturated)
    assert result.verdict is Verdict.INCONCLUSIVE and "cannot be judged in float64" in result.message
