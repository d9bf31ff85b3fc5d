"""The executor interface: results in order, a task the executor loses tried once more
and then INFRA_ERROR (never CRASHED), a pool or cluster that stays usable, a bug of
the harness raised; the same grid graded through local processes and a Dask
LocalCluster gives the same gradebook and exit status."""

import json
import os

import pytest

from harness.executors.engine import LOCAL, SchedulerError, lost, open_engine, run_tasks
from tests.grading.classroom import MODULES, grade


def square(n):
    return n * n


def die(_):
    os._exit(7)  # the process running the task dies: the pool process, or the Dask worker


def die_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(7)
    return "second attempt"


def slow_square(n):
    import time

    time.sleep(0.5)  # still running when its neighbour kills their pool
    return n * n


def harness_bug(_):
    raise ZeroDivisionError("a bug of the harness itself")


def test_local_results_come_back_in_order():
    with open_engine(2) as engine:
        assert engine.kind == "local"
        assert run_tasks(engine, square, list(range(7)), [str(n) for n in range(7)]) == [n * n for n in range(7)]


def test_local_a_lost_task_is_tried_once_more_then_infra_error_and_the_pool_goes_on(tmp_path):
    done = []
    with open_engine(2) as engine:
        results = run_tasks(engine, die_once, [str(tmp_path / "marker")], ["flaky"])
        assert results == ["second attempt"]
        results = run_tasks(engine, die, [None], ["doomed"], on_done=lambda i, r: done.append(i))
        record = results[0]["runs"][0]["results"][0]
        assert record["verdict"] == "INFRA_ERROR" and "pool process" in record["message"], record
        assert done == [0]
        assert run_tasks(engine, square, [3, 4], ["a", "b"]) == [9, 16]  # a fresh pool took over


def test_a_task_that_kills_its_pool_twice_takes_only_itself_down():
    """Two at once: the dying task breaks the pool under its neighbour, both are tried
    again -- one at a time, so the second break is the dying task's alone."""
    tasks = [(die, None), (slow_square, 5), (slow_square, 6)]
    with open_engine(2) as engine:
        results = run_tasks(engine, _call, tasks, ["doomed", "five", "six"])
    assert results[0]["runs"][0]["results"][0]["verdict"] == "INFRA_ERROR"
    assert results[1:] == [25, 36]


def test_a_pool_that_breaks_while_a_task_goes_out_is_replaced_not_hung(tmp_path):
    """CPython 3.12.0-3.12.7 and 3.13.0 (gh-125451): without the engine's care, making
    the new pool waits for good (it hung a CI run here). In a process of its own,
    killed with its pool after 60 s."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "tests.executors.pool_breaks_while_sending", str(tmp_path / "m")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the engine hung making a new pool after the old one broke while a task went out to it")
    if proc.returncode and "this task could not go out this time" in err:
        # (a machine so loaded that the pool's manager saw the death only after the task had
        # failed to go out: it held no lock then, and the failure is raised as a harness bug)
        return
    assert proc.returncode == 0, err
    assert out.split() == ["INFRA_ERROR", "sent"], out  # the killer lost, its neighbour tried again and done


def _call(task):
    function, argument = task
    return function(argument)


def test_a_bug_of_the_harness_is_raised_not_reported_as_a_verdict():
    with open_engine(1) as engine, pytest.raises(ZeroDivisionError):
        run_tasks(engine, harness_bug, [None], ["x"])
    assert lost(ZeroDivisionError()) is None


def test_a_scheduler_address_is_checked_before_dask_is_imported():
    with pytest.raises(SchedulerError, match="expected a Dask scheduler address"):
        open_engine(2, "localhost:8786")


# --- Dask ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    engine = open_engine(2, LOCAL)  # LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
    yield engine
    engine.close()


def test_dask_a_dead_worker_is_retried_once_then_infra_error_and_the_cluster_stays_usable(cluster):
    results = run_tasks(cluster, die, [None], ["doomed"])
    record = results[0]["runs"][0]["results"][0]
    assert record["verdict"] == "INFRA_ERROR", record
    assert "died 2 times" in record["message"] and "CRASHED" not in json.dumps(results)
    assert run_tasks(cluster, square, [5, 6, 7], ["a", "b", "c"]) == [25, 36, 49]


def test_dask_an_implementation_that_crashes_is_crashed_not_infra_and_the_cluster_goes_on(cluster):
    from harness.commands.check import selected_case
    from harness.executors.tasks import PYTHON, CheckTask, WorkerSpec, run_check_task

    class Args:
        sizes, activations, loss, batch, dtype, seed = "6,5,3", None, None, None, None, 0
        case_file, kinks, logit_scale = None, False, None

    case = selected_case(Args())
    tasks = [CheckTask(WorkerSpec(PYTHON, f"{name}:backprop", {f"{name}.py": MODULES[name][0].encode()}), cases=(case,),
                       timeout=30) for name in ("crashes", "correct")]
    crashed, correct = run_tasks(cluster, run_check_task, tasks, ["crashes", "correct"])
    first = crashed["runs"][0]["results"][0]
    assert first["verdict"] == "CRASHED" and "exit status 3" in first["message"]
    verdicts = {r["check"]: r["verdict"] for run in correct["runs"] for r in run["results"]}
    assert set(verdicts.values()) == {"PASS", "SKIP"} and verdicts["gradients_match_reference"] == "PASS", verdicts


def test_the_same_grid_gives_the_same_gradebook_locally_and_on_dask(tmp_path):
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    from tests.grading.classroom import QUICK, comparable

    room = tmp_path / "room"
    room.mkdir()
    for name in ("correct", "wrong_gradient", "crashes"):
        (room / f"{name}.py").write_text(MODULES[name][0])
    (room / "notes.txt").write_text("x")
    books = {}
    for how, options in (("local", ("-j", "2")), ("dask", ("--scheduler", "local", "-j", "2"))):
        done = grade(room, tmp_path / how, *options, *QUICK, "--batch", "4")
        books[how] = (done.returncode, comparable(json.loads((tmp_path / how / "gradebook.json").read_text())))
    assert books["local"][0] == books["dask"][0] == 1
    assert books["local"][1] == books["dask"][1]
    verdicts = {r["submission"]: r["verdict"] for r in books["dask"][1]["submissions"]}
    assert verdicts == {"correct": "PASS", "wrong_gradient": "FAIL", "crashes": "CRASHED", "notes.txt": "ERROR"}


def test_check_gives_the_same_report_and_exit_status_locally_and_on_dask(tmp_path):
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    from tests.grading.classroom import ROOT, comparable, harness

    impls = ["--impl", "numpy", "--impl", "tests.corpus:SignFlipped", "--impl", "tests.hostile_impls:exits_0_in_step"]
    reports = {}
    for how, options in (("local", ["-j", "2"]), ("dask", ["--scheduler", "local", "-j", "2"])):
        done = harness("check", *impls, "--dtype", "float64", "--json", str(tmp_path / f"{how}.json"), *options, cwd=ROOT)
        report = comparable(json.loads((tmp_path / f"{how}.json").read_text()))
        reports[how] = (done.returncode, report, done.stdout.splitlines()[-1])
    assert reports["local"] == reports["dask"]
    code, report, last = reports["dask"]
    assert code == 1 and len(report["runs"]) == 30, last  # the battery, 10 cases, for each of the three
    verdicts = {}
    for run in report["runs"]:
        verdicts.setdefault(run["impl"], set()).add(run["verdict"])
    assert verdicts["numpy"] == {"PASS"} and "FAIL" in verdicts["tests.corpus:SignFlipped"]
    assert verdicts["tests.hostile_impls:exits_0_in_step"] == {"CRASHED"}


def test_check_scheduler_and_in_process_contradict(capsys):
    from harness.commands.main import main

    assert main(["check", "--impl", "numpy", "--in-process", "--scheduler", "local"]) == 2
    assert "--scheduler and --in-process contradict each other" in capsys.readouterr().err


def _processes_running(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_stopping_the_local_engine_kills_the_workers_its_tasks_started(tmp_path):
    import time
    import uuid

    from harness.executors.tasks import PYTHON, CheckTask, WorkerSpec, run_check_task

    module = f"hangs_{uuid.uuid4().hex[:8]}"
    task = CheckTask(WorkerSpec(PYTHON, f"{module}:backprop", {f"{module}.py": MODULES["hangs"][0].encode()}),
                     timeout=120)
    engine = open_engine(1)
    future = engine.executor.submit(run_check_task, task)
    deadline = time.monotonic() + 60
    while not _processes_running(module) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_running(module), "the task's worker never started"
    engine.close(cancel=True)  # what Ctrl-C does
    deadline = time.monotonic() + 10
    while _processes_running(module) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_running(module) == []
    assert lost(future.exception(timeout=30))  # the task was lost with its pool process: the engine's doing


def test_a_task_after_another_starts_once_that_one_is_done_and_the_others_run_meanwhile():
    import threading
    import time

    times, lock = {}, threading.Lock()

    def timed(name):
        start = time.monotonic()
        time.sleep(0.3)
        with lock:
            times[name] = (start, time.monotonic())
        return name

    with open_engine(2, lending=True) as engine:  # the harness's threads: check's and train's local executor
        assert run_tasks(engine, timed, ["first", "after first", "free"], ["a", "b", "c"], after=[None, 0, None]) \
            == ["first", "after first", "free"]
    assert times["after first"][0] >= times["first"][1]
    assert times["free"][0] < times["first"][1]  # it did not wait: only "after first" did


def test_a_lost_task_becomes_what_lost_as_makes_of_it(tmp_path):
    with open_engine(1) as engine:
        assert run_tasks(engine, die, [None], ["doomed"], lost_as=lambda label, why: (label, "pool process" in why)) \
            == [("doomed", True)]
