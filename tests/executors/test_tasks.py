"""Tasks: plain descriptions in, plain data out, run here exactly as an executor runs
them; a submission's files in a private folder; results that come back whole."""

import pickle

import pytest

from harness.commands.check import selected_case
from harness.core.results import Verdict
from harness.executors.tasks import (
    COMMAND,
    PYTHON,
    CheckTask,
    WorkerSpec,
    _write_files,
    infra_result,
    result_from_dict,
    run_check_task,
)
from tests.grading.classroom import MODULES


class _Args:
    sizes, activations, loss, batch, dtype, seed = "6,5,3", None, None, 4, None, 0
    case_file, kinks, logit_scale = None, False, None


def _task(name, **kw):
    source = MODULES[name][0].encode()
    return CheckTask(WorkerSpec(PYTHON, f"{name}:backprop", {f"{name}.py": source}), cases=(selected_case(_Args()),),
                     timeout=30, **kw)


def test_a_task_is_plain_data_and_its_result_too():
    task = _task("wrong_gradient", memory_limit=1 << 30)
    copy = pickle.loads(pickle.dumps(task))
    assert copy.worker == task.worker and copy.memory_limit == 1 << 30
    assert copy.cases[0].describe() == task.cases[0].describe() and (copy.cases[0].x == task.cases[0].x).all()
    result = run_check_task(task)
    assert pickle.loads(pickle.dumps(result)) == result
    records = [r for run in result["runs"] for r in run["results"]]
    failed = next(r for r in records if r["check"] == "gradients_match_reference")
    assert failed["verdict"] == "FAIL" and failed["tensors"] and failed["repro"].startswith(
        "backprop-harness check --impl wrong_gradient:backprop")
    for record in records:  # the records come back whole
        assert result_from_dict(record).to_dict() == record


def test_the_battery_is_planned_where_the_task_runs_and_an_undeclared_dtype_says_why():
    task = CheckTask(WorkerSpec(PYTHON, "correct:backprop", {"correct.py": MODULES["correct"][0].encode()}),
                     dtypes=("float32",), timeout=30)
    result = run_check_task(task)
    records = [r for run in result["runs"] for r in run["results"]]
    assert records[-1]["check"] == "judged" and records[-1]["verdict"] == "INCONCLUSIVE"
    assert "dtype float32 not declared" in records[-1]["message"]


def test_a_worker_that_cannot_start_is_its_load_record():
    task = CheckTask(WorkerSpec(COMMAND, "/nonexistent/worker --flag"), timeout=10)
    record = run_check_task(task)["runs"][0]["results"][0]
    assert record["check"] == "load" and record["verdict"] in ("ERROR", "CRASHED")
    assert "/nonexistent/worker" in record["message"] + record["repro"]


def test_files_stay_inside_the_tasks_folder(tmp_path):
    _write_files(str(tmp_path), {"pkg/a.py": b"x = 1\n", "run.sh": b"#!/bin/sh\n"}, ("run.sh",))
    assert (tmp_path / "pkg" / "a.py").read_bytes() == b"x = 1\n"
    assert (tmp_path / "run.sh").stat().st_mode & 0o111
    with pytest.raises(ValueError, match="inside the task's folder"):
        _write_files(str(tmp_path / "pkg"), {"../escaped.py": b""})
    assert not (tmp_path / "escaped.py").exists()


def test_an_unknown_worker_kind_is_refused():
    with pytest.raises(ValueError, match="expected 'python' or 'command'"):
        run_check_task(CheckTask(WorkerSpec("java", "Main")))


def test_a_lost_task_is_infra_error_and_not_ok():
    record = result_from_dict(infra_result("alice", "the executor lost the task")["runs"][0]["results"][0])
    assert record.verdict is Verdict.INFRA_ERROR and not record.ok


def test_a_tasks_time_limit_cuts_short_its_remaining_cases():
    from harness.checks import planner

    # each step sleeps 0.4 s: the first case's calls use up the 1.5 s and the rest are not run
    slow = MODULES["correct"][0].replace("def backprop(spec, params, x, y):\n",
                                         "def backprop(spec, params, x, y):\n    import time\n\n    time.sleep(0.4)\n")
    cases = tuple(planner.battery()[:4])
    task = CheckTask(WorkerSpec(PYTHON, "slow:backprop", {"slow.py": slow.encode()}), cases=cases, timeout=30,
                     time_limit=1.5)
    runs = run_check_task(task)["runs"]
    assert len(runs) == 4
    verdicts = [{r["verdict"] for r in run["results"]} for run in runs]
    assert "TIMEOUT" in verdicts[0] or "TIMEOUT" in verdicts[1]  # a call cut to the time left
    last = runs[-1]["results"]
    assert [r["check"] for r in last] == ["time_limit"] and last[0]["verdict"] == "TIMEOUT"
    assert "time limit of 1.5 s for all cases ran out" in last[0]["message"]
