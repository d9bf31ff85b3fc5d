"""The conformance grid through the executor: the same (implementation, check) grid
gives the same outcome per test, and the same exit status, run by pytest itself
(--conformance-jobs 0), as tasks in local pool processes (the default, or
--conformance-jobs N) and on a Dask LocalCluster (--conformance-scheduler local); a failure reported from a task keeps
hypothesis's minimal example and the reproduce line, whose case file exists."""

import re

import pytest

from tests.conformance.test_plugin import IMPLS
from tests.grading.classroom import ROOT

pytest_plugins = ["pytester"]

CHECKS = "gradients_match_reference or batch_gradient_is_mean_of_samples or no_state_between_calls"
OUTCOME = re.compile(r"^(PASSED|FAILED|SKIPPED|ERROR) (\S+)", re.M)


@pytest.fixture
def grid(pytester, monkeypatch):
    pytester.makepyfile(myimpls=IMPLS)
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")  # derandomized: the same examples wherever they are drawn
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's harness and plugin, not an installed one

    def run(*options):
        result = pytester.runpytest_subprocess(
            "--pyargs", "harness.conformance", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA", "-k", CHECKS,
            "--impl", "myimpls:correct", "--impl", "myimpls:bias_summed", *options)
        text = result.stdout.str() + result.stderr.str()
        return result.ret, sorted(OUTCOME.findall(text)), text

    return run


def test_the_grid_gives_the_same_outcomes_in_pytest_locally_and_on_dask(grid):
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    runs = {"pytest": grid("--conformance-jobs", "0"), "local": grid("--conformance-jobs", "2"),
            "dask": grid("--conformance-scheduler", "local", "--conformance-jobs", "2")}
    assert runs["pytest"][:2] == runs["local"][:2] == runs["dask"][:2], {k: v[1] for k, v in runs.items()}
    assert "the conformance grid ran as 2 executor tasks on Dask (local)" in runs["dask"][2]
    assert "the conformance grid ran" not in runs["pytest"][2]
    code, outcomes, text = runs["dask"]
    assert code == 1
    verdicts = {node: outcome for outcome, node in outcomes}
    assert len(verdicts) == 6
    assert {v for node, v in verdicts.items() if "myimpls:correct" in node} == {"PASSED"}
    assert verdicts["test_conformance.py::test_gradients_match_reference[myimpls:bias_summed]"] == "FAILED"
    # hypothesis's minimal example ("Falsifying example:" before 6.170, "Failing test case:" since)
    assert re.search(r"(Falsifying example|Failing test case): conforms\(", text), text[-2000:]
    case_file = re.search(r"reproduce: backprop-harness check --impl myimpls:bias_summed --case-file (\S+\.npz)", text)
    assert case_file, text
    from pathlib import Path

    assert Path(case_file.group(1)).is_file()


def test_grid_options_and_xdist_or_in_process_are_refused_with_one_line(grid):
    code, _, text = grid("--conformance-jobs", "2", "--in-process")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-jobs/--conformance-scheduler and --in-process contradict each other" in text
    code, _, text = grid("--conformance-jobs", "-1")
    assert code == pytest.ExitCode.USAGE_ERROR and "--conformance-jobs -1: expected a whole number >= 0" in text
    code, _, text = grid("--conformance-jobs", "0", "--conformance-scheduler", "local")
    assert code == pytest.ExitCode.USAGE_ERROR and "--conformance-jobs 0 and --conformance-scheduler contradict" in text
    code, _, text = grid("--conformance-scheduler", "nowhere")
    assert code == pytest.ExitCode.USAGE_ERROR and "--scheduler 'nowhere': expected a Dask scheduler address" in text


def test_by_default_the_grid_runs_through_the_executor_with_the_outcomes_of_pytest_s_own_run(grid):
    """Without options (and without -n or --in-process) the grid is executor tasks in
    local pool processes, one per core; the outcomes are those of each test running its
    property itself (--conformance-jobs 0), and a failure keeps its reproduce line."""
    default, itself = grid(), grid("--conformance-jobs", "0")
    assert default[:2] == itself[:2], (default[1], itself[1])
    code, outcomes, text = default
    assert code == 1 and len(outcomes) == 6
    assert "backprop-harness: the conformance grid ran as 2 executor tasks in " in text
    assert "local pool process" in text
    assert ("FAILED", "test_conformance.py::test_gradients_match_reference[myimpls:bias_summed]") in outcomes
    assert "reproduce: backprop-harness check --impl myimpls:bias_summed --case-file" in text
