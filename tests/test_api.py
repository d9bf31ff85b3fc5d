"""The Python API (``harness/__init__.py``): a thin front end over the same engine as the
command line, light to import, and everything in ``__all__`` really there."""

import json
import os
import subprocess
import sys

import pytest

import harness
from harness.commands.main import main
from harness.core.protocol import Capabilities
from harness.core.reference import loss_and_grads
from tests import conformance_impls, corpus


def test_check_runs_exactly_the_cases_of_the_command_line(tmp_path, capsys):
    results = harness.check("pure-python")
    report = tmp_path / "out.json"
    assert main(["check", "--impl", "pure-python", "--json", str(report)]) == 0
    capsys.readouterr()
    cli_cases = [run["case"] for run in json.loads(report.read_text())["runs"]]
    api_cases = list(dict.fromkeys(r.case for r in results))
    assert api_cases == cli_cases and len(api_cases) == 10
    # the seed's network is beyond pure-python's declared budget: a SKIP saying so, in both
    left_out = [r for r in results if r.check == "applicable"]
    assert len(left_out) == 1 and left_out[0].verdict is harness.Verdict.SKIP
    assert left_out[0].case.startswith("784-500-10") and "max_multiply_adds" in left_out[0].message
    assert all(r.ok for r in results)


def test_check_narrows_to_one_dtype_and_runs_a_given_case_alone():
    def both(spec, params, x, y):
        return corpus.Backprop()(spec, params, x, y)

    both.capabilities = Capabilities(dtypes={"float32", "float64"}, max_multiply_adds=0)  # every battery case left out
    left_out = harness.check(both, dtype="float32")
    cases = {r.case for r in left_out if r.check == "applicable"}
    assert len(cases) == 10 and all("float32" in c for c in cases)
    # nothing was judged: the records must not all be ok
    assert left_out[-1].check == "judged" and left_out[-1].verdict is harness.Verdict.INCONCLUSIVE
    assert not all(r.ok for r in left_out) and left_out[-1].message.startswith("nothing of ")
    case = harness.make_case(corpus.RELU, 3)
    results = harness.check(corpus.Backprop(), case)
    assert {r.case for r in results} == {case.describe()} and all(r.ok for r in results)
    assert [r.check for r in results] == [harness.checks.check_name(c) for c in harness.ALL_CHECKS]


def test_check_on_an_unavailable_implementation_is_a_fail_record():
    (result,) = harness.check(conformance_impls.Unavailable)
    assert result.verdict is harness.Verdict.FAIL and not result.ok
    assert result.impl == "never-available" and result.check == "available"  # as the command line records it
    assert result.message == "named explicitly but unavailable: needs hardware this machine lacks"


def test_check_catches_a_bug_from_the_corpus():
    case = harness.make_case(corpus.RELU, 6, seed=1)
    failed = {r.check for r in harness.check(corpus.SignFlipped(), case) if not r.ok}
    assert "gradients_match_reference" in failed


def test_run_checks_accepts_a_plain_function():
    def mine(spec, params, x, y):
        return loss_and_grads(spec, params, x, y)

    results = harness.run_checks(mine, harness.make_case(corpus.RELU, 3))
    assert [r.check for r in results] == [harness.checks.check_name(c) for c in harness.ALL_CHECKS]
    assert all(r.ok for r in results) and results[0].impl.endswith("mine")


def test_run_checks_accepts_a_registered_name_and_module_attr():
    case = harness.make_case(corpus.RELU, 3)
    assert all(r.ok for r in harness.run_checks("numpy", case))
    assert all(r.ok for r in harness.run_checks("tests.conformance_impls:correct", case))


def test_everything_in_all_is_there():
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert harness.specs is harness.conformance.strategies.specs  # strategies load on first use


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'harness' has no attribute 'no_such_thing'"):
        harness.no_such_thing  # noqa: B018


def test_importing_harness_imports_neither_torch_nor_pytest_nor_hypothesis():
    code = (
        "import sys, harness; bad = {'torch', 'pytest', 'hypothesis'} & set(sys.modules); "
        "assert not bad, bad; assert callable(harness.parametrize_with_checks); "
        "harness.specs; assert 'hypothesis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_check_takes_a_mapping_and_names_one_by_module_attr():
    from harness.mappings import examples

    results = harness.check(examples.relu, dtype="float32", seed=2)
    assert results and all(r.ok for r in results) and {r.impl for r in results} == {"relu"}
    assert any(r.check == "vjp_matches_oracle" and r.verdict.value == "PASS" for r in results)
    by_name = harness.check("harness.mappings.examples:relu", dtype="float32", seed=2)
    assert [(r.check, r.verdict) for r in by_name] == [(r.check, r.verdict) for r in results]
    large = harness.check(examples.relu, dtype="float64", size=5000, probes=2)
    assert {r.check: r.verdict.value for r in large}["vjp_matches_oracle"] == "SKIP"  # beyond every-element
    assert {r.check: r.verdict.value for r in large}["vjp_probes"] == "PASS"


def test_a_wrong_mapping_fails_through_the_api():
    import numpy as np

    wrong = harness.Mapping("wrong", np.tanh, lambda i, c: (c[0] * (1 - i[0] ** 2),), inputs=[harness.Input((4,))])
    results = harness.check(wrong)
    assert any(r.check == "vjp_matches_oracle" and r.verdict.value == "FAIL" for r in results)
    case = harness.load_mapping_case(next(r.repro for r in results if r.repro).split("--case-file ")[1].split()[0])
    assert any(not r.ok for r in harness.check(wrong, case))  # the case file reruns it


def test_the_framework_adapters_are_imported_only_when_called():
    code = "import sys, harness; harness.Mapping; harness.Input; assert 'torch' not in sys.modules and 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    torch = pytest.importorskip("torch")
    m = harness.torch_mapping(torch.tanh, inputs=[harness.Input((3,))])
    assert isinstance(m, harness.Mapping) and m.name == "tanh"


def test_a_plug_in_that_exits_is_an_error_record_not_the_end_of_the_caller():
    from tests import fault_impls

    results = harness.check(fault_impls.exits_0, harness.make_case(corpus.RELU, 3))
    assert results and all(r.verdict is harness.Verdict.ERROR for r in results if r.verdict is not harness.Verdict.SKIP)
    assert "step raised SystemExit: 0" in results[0].message


def test_a_mapping_whose_every_check_skipped_closes_with_an_inconclusive_record():
    import numpy as np

    # no vjp and no case at all (samples gives none): nothing was judged
    forward_only = harness.Mapping("forward only", np.tanh, samples=lambda rng, dtype: [])
    results = harness.check(forward_only)
    assert results[-1].check == "judged" and results[-1].verdict.value == "INCONCLUSIVE"
    assert not all(r.ok for r in results)
