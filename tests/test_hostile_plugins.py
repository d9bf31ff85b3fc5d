"""The judge never shares a process with the code it judges: plug-ins that exit (with
status 0), hang, crash, patch the harness, close stdout, print hundreds of megabytes
or ignore SIGTERM -- at import or in a step -- through ``check`` (and ``--isolate``),
the conformance suite and ``train``. Each run exits non-zero with the right verdict
for the plug-in, and ``numpy``, run beside it, keeps its results.

Every run is a separate ``python -m harness`` (or ``pytest``) process, as a user's
would be: a plug-in that escaped its worker would end that process, not this one.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASE = ["--sizes", "4,3,2", "--batch", "3"]
INTERRUPTIBLE = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from harness.commands.main import main; sys.exit(main(sys.argv[1:]))")
RSS = ("import resource, sys; from harness.commands.main import main; code = main(sys.argv[1:]); "
       "print('maxrss-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")


def harness(*args, timeout=120, env=None):
    run = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "COLUMNS": "250", **(env or {})})
    return run.returncode, " ".join(run.stdout.split()), run.stderr


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def numpy_survives(out: str) -> None:
    assert "│ numpy │ 4-3-2 relu,identity cross_entropy batch=3 float64 seed=0 │ PASS │ 13/13" in out, out


@pytest.mark.parametrize(("target", "verdict", "words"), [
    ("tests.hostile_impls:exits_0_in_step", "CRASHED", "the worker died during step: exit status 0"),
    ("tests.hostile_impls:segfaults", "CRASHED", "killed by SIGSEGV"),
    ("tests.hostile_impls:sys_exit_0_in_step", "ERROR", "step raised SystemExit: 0"),
    ("tests.hostile_imports.exits_0:backprop", "CRASHED", "the worker died during start (loading it): exit status 0"),
    ("tests.hostile_imports.sys_exit_0:backprop", "ERROR", "cannot import module 'tests.hostile_imports.sys_exit_0': SystemExit: 0"),
    ("tests.hostile_imports.hangs:backprop", "TIMEOUT", "no answer to start (loading it) within 3 s"),
    ("tests.hostile_impls:monkeypatches_the_judge", "FAIL", "gradients_match_reference FAIL"),
    ("tests.hostile_impls:closes_stdout", "FAIL", "gradients_match_reference FAIL"),
])
def test_check_reports_the_plug_in_and_goes_on(target, verdict, words):
    # a short limit only where something hangs: on a busy machine even numpy's worker may take seconds to start
    code, out, err = harness("check", "--impl", target, "--impl", "numpy", *CASE, "--timeout", "3" if "hangs" in target else "60")
    assert code == 1, out + err
    assert f" {verdict} " in out and words in out, out
    numpy_survives(out)
    assert "1 of 2 implementation/case runs passed, 1 failed" in out


def test_isolate_is_the_default_under_its_old_name():
    code, out, _ = harness("check", "--isolate", "--impl", "tests.hostile_impls:exits_0_in_step", "--impl", "numpy", *CASE)
    assert code == 1 and " CRASHED " in out and "exit status 0" in out
    numpy_survives(out)


def test_a_plug_in_that_ignores_sigterm_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    start = time.monotonic()
    code, out, _ = harness("check", "--impl", "tests.hostile_impls:hangs_ignoring_sigterm", "--impl", "numpy", *CASE,
                           "--timeout", "2", env={"HOSTILE_PIDS": str(pids)})
    assert code == 1 and " TIMEOUT " in out
    assert "no answer to step within 2 s; the worker was killed (it ignored SIGTERM: SIGKILL)" in out
    numpy_survives(out)
    assert time.monotonic() - start < 60
    recorded = [int(p) for p in pids.read_text().split()]
    assert recorded and not any(alive(p) for p in recorded)  # the worker and the child it started


def test_a_plug_in_printing_hundreds_of_megabytes_costs_the_harness_a_bounded_tail():
    def max_rss_kb(*impls):
        run = subprocess.run([sys.executable, "-c", RSS, "check", *impls, *CASE], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
        return run.returncode, " ".join(run.stdout.split()), int(run.stderr.split("maxrss-kb")[-1])

    _, _, baseline = max_rss_kb("--impl", "numpy")
    code, out, flooded = max_rss_kb("--impl", "tests.hostile_impls:floods_stdout", "--impl", "numpy")
    assert code == 1 and "gradients_match_reference FAIL" in out  # the 200 MB hid nothing
    numpy_survives(out)
    assert flooded < baseline + 50_000, (baseline, flooded)  # kilobytes: 200 MB went through, not into memory


def test_ctrl_c_stops_every_worker(tmp_path):
    pids = tmp_path / "pids"
    # As from a terminal: pytest-xdist's workers ignore SIGINT, and a child would inherit that.
    cli = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, "check", "--impl", "tests.hostile_impls:hangs_ignoring_sigterm",
                            *CASE, "--timeout", "120"], cwd=ROOT, env={**os.environ, "HOSTILE_PIDS": str(pids)},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        recorded = [int(p) for p in pids.read_text().split()]
        cli.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends the harness (the workers are in their own groups)
        _, err = cli.communicate(timeout=30)
    finally:  # whatever happened, nothing of this test lives on
        for pid in [cli.pid, *(int(p) for p in pids.read_text().split() if pids.exists())]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL) if alive(pid) else None
    assert cli.returncode == 130 and "interrupted" in err, err
    time.sleep(0.2)
    assert recorded and not any(alive(p) for p in recorded)


# --- the conformance suite -----------------------------------------------------------


def suite(*args):
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "harness.conformance",
                          "-k", "gradients_match_reference", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=180, env={**os.environ, "HYPOTHESIS_PROFILE": "dev", "OMP_NUM_THREADS": "1"})
    return run.returncode, run.stdout


@pytest.mark.parametrize(("target", "words"), [
    ("tests.hostile_impls:exits_0_in_step", "CRASHED"),
    ("tests.hostile_imports.hangs:backprop", "TIMEOUT: no answer to start (loading it) within 3 s"),
    ("tests.hostile_impls:monkeypatches_the_judge", "gradients_match_reference FAIL"),
])
def test_the_conformance_suite_fails_the_plug_in_and_passes_numpy(target, words):
    code, out = suite("--impl", target, "--impl", "numpy", "--worker-timeout", "3" if "hangs" in target else "60", "-v")
    assert code == 1, out
    assert "test_gradients_match_reference[numpy] PASSED" in out
    assert f"test_gradients_match_reference[{target}] FAILED" in out and words in out, out


# --- train -----------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "timeout", "words"), [
    ("tests.hostile_impls:exits_0_in_step", "60", "CRASHED: the worker died during step: exit status 0"),
    ("tests.hostile_impls:sys_exit_0_in_step", "60", "ERROR: step raised SystemExit: 0"),
    ("tests.hostile_imports.hangs:backprop", "3", "TIMEOUT: no answer to start (loading it) within 3 s"),
])
def test_train_reports_the_plug_in_and_trains_the_others(target, timeout, words):
    code, out, err = harness("train", "--impl", target, "--impl", "numpy", "--epochs", "1", "--hidden", "8", "--timeout", timeout)
    assert code == 1, out + err
    assert words in out, out
    assert " numpy " in out and " ref. " in out  # the reference trained and is in the table
