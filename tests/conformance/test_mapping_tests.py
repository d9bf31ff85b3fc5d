"""Mapping checks as pytest tests: through ``--mapping`` on the conformance suite and
through ``harness.parametrize_with_checks`` with Mapping objects."""

import os
import textwrap

import pytest

import harness
from harness.checks.mapping_runner import MAPPING_CHECKS, mapping_check_name
from harness.conformance.mapping_tests import MappingConformanceFailure, mapping_subject, run_mapping_subject
from harness.mappings import examples

pytest_plugins = ["pytester"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MAPS = textwrap.dedent('''
    import numpy as np
    import harness

    def wrong_vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return (g * (1 - x ** 2),)

    wrong = harness.Mapping("wrong tanh", np.tanh, wrong_vjp, inputs=[harness.Input((3, 4))])
''')


def test_a_correct_mapping_passes_and_a_wrong_one_fails_naming_its_case():
    check = next(c for c in MAPPING_CHECKS if mapping_check_name(c) == "vjp_matches_oracle")
    run_mapping_subject(check, mapping_subject(examples.softmax))
    wrong = harness.Mapping("wrong", examples.softmax_forward, lambda i, c: (c[0],), inputs=[harness.Input((2, 3))])
    with pytest.raises(MappingConformanceFailure, match="vjp_matches_oracle FAIL: wrong on random float64"):
        run_mapping_subject(check, mapping_subject(wrong))


def test_a_check_that_applies_to_no_case_skips_and_an_unloadable_mapping_fails():
    check = next(c for c in MAPPING_CHECKS if mapping_check_name(c) == "second_order")
    with pytest.raises(pytest.skip.Exception, match="applied to none of the cases"):
        run_mapping_subject(check, mapping_subject(examples.relu))
    with pytest.raises(pytest.fail.Exception, match="cannot import module"):
        run_mapping_subject(check, mapping_subject("nosuch:mapping"))


@harness.parametrize_with_checks([examples.relu])
def test_parametrize_with_checks_takes_mappings(impl, check):
    check(impl)


def test_the_suite_runs_mappings_named_with_dash_dash_mapping(pytester, monkeypatch):
    pytester.makepyfile(conformancemaps=MAPS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([ROOT, str(pytester.path)]))  # this tree's harness
    result = pytester.runpytest_subprocess("--pyargs", "harness.conformance", "-p", "no:cacheprovider",
                                           "--mapping", "conformancemaps:wrong", "-k", "vjp or shapes")
    # shapes passes; vjp_matches/probes fail; jvp_vjp_transpose skips (no jvp); the MLP tests are deselected
    result.assert_outcomes(passed=1, failed=2, skipped=1, deselected=23)
    out = result.stdout.str()
    assert "reproduce: backprop-harness check --mapping conformancemaps:wrong" in out


EXITS = textwrap.dedent('''
    import os
    import numpy as np
    import harness

    def exits_0(inputs, cotangents):
        os._exit(0)

    def tanh_vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return (g * (1 - np.tanh(x) ** 2),)

    exiting = harness.Mapping("exits 0", np.tanh, exits_0, inputs=[harness.Input((3, 4))])
    tanh = harness.Mapping("tanh", np.tanh, tanh_vjp, inputs=[harness.Input((3, 4))])
''')


def test_a_mapping_named_by_module_attr_runs_in_a_worker_and_its_exit_fails_its_test(tmp_path, monkeypatch):
    # in process, os._exit(0) would end the whole pytest session with status 0: every test "passed"
    (tmp_path / "exitmaps.py").write_text(EXITS)
    monkeypatch.syspath_prepend(str(tmp_path))
    check = next(c for c in MAPPING_CHECKS if mapping_check_name(c) == "vjp_matches_oracle")
    exiting, fine = mapping_subject("exitmaps:exiting"), mapping_subject("exitmaps:tanh")
    try:
        assert exiting.name == "exits 0" and exiting.worker is not None
        with pytest.raises(pytest.fail.Exception, match="CRASHED: exits 0 on random float64 .* exit status 0"):
            run_mapping_subject(check, exiting)
        run_mapping_subject(check, fine)  # the next subject is untouched
    finally:
        for subject in (exiting, fine):
            subject.worker.close()
