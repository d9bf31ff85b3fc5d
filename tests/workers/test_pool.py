"""Lanes: each run in order by one thread, lanes side by side, results by index; a
worker that cannot start is reported with its verdict and the others start."""

import threading

import pytest

from harness.core.results import Verdict
from harness.workers import pool
from harness.workers.remote import DeclarationRefused, WorkerImplementation


def test_lanes_run_side_by_side_each_in_order_and_results_come_back_by_index():
    meeting = threading.Barrier(2, timeout=10)  # both lanes must be running at once to pass it
    seen = []

    def work(payload):
        lane, step = payload
        if step == 0:
            meeting.wait()
        seen.append(payload)
        return f"{lane}{step}"

    lanes = [pool.Lane([(0, ("a", 0)), (2, ("a", 1))], cost=1), pool.Lane([(1, ("b", 0)), (3, ("b", 1))], cost=2)]
    assert pool.run_lanes(lanes, work, jobs=2) == {0: "a0", 2: "a1", 1: "b0", 3: "b1"}
    assert [p for p in seen if p[0] == "a"] == [("a", 0), ("a", 1)]  # in order within a lane


def test_a_single_job_runs_the_costliest_lane_first():
    order = []
    lanes = [pool.Lane([(0, "cheap")], cost=1), pool.Lane([(1, "dear")], cost=5)]
    pool.run_lanes(lanes, order.append, jobs=1)
    assert order == ["dear", "cheap"]


def test_a_bug_in_the_harness_itself_is_not_swallowed():
    def work(payload):
        raise ZeroDivisionError("the harness's own mistake")

    with pytest.raises(ZeroDivisionError):
        pool.run_lanes([pool.Lane([(0, None)])], work, jobs=2)


def test_start_all_reports_each_failure_with_its_verdict_and_starts_the_rest():
    impls = [WorkerImplementation.python("numpy"), WorkerImplementation.python("no_such_module_xyz:f"),
             WorkerImplementation(["/no/such/program"])]
    try:
        outcomes = pool.start_all(impls, jobs=2)
        assert outcomes[0] is None and impls[0].capabilities.input_grad
        # a name that does not import is bad input: handed back for the caller to raise
        assert isinstance(outcomes[1], DeclarationRefused) and "No module named 'no_such_module_xyz'" in str(outcomes[1])
        assert outcomes[2] == (Verdict.ERROR, "cannot start '/no/such/program': No such file or directory")
    finally:
        for impl in impls:
            impl.close()


def test_default_jobs_is_the_cores_this_process_may_use():
    assert pool.default_jobs() >= 1
