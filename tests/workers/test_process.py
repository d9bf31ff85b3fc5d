"""Process control: a worker in a group of its own, answers under a time limit, a
bounded tail of what it prints, and every way it can die told apart."""

import os
import signal
import sys
import time

import pytest

from harness.core.out_of_process import ImplementationGone
from harness.core.results import Verdict
from harness.workers import process, wire
from harness.workers.process import OutputTail, WorkerProcess, describe_exit

ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line); sys.stdout.flush()\n"


def worker(body: str) -> WorkerProcess:
    return WorkerProcess([sys.executable, "-c", body])


def ask(w: WorkerProcess, message=None, timeout=10.0, limit=1 << 20):
    line, buffers = wire.encode(message or {"id": 1, "kind": "ping"})
    return w.request(line, buffers, timeout=timeout, phase="ping", limit=limit)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_request_gets_its_answer_and_close_ends_the_worker():
    w = worker(ECHO)
    assert ask(w, {"id": 7, "kind": "x", "n": 2}) == {"id": 7, "kind": "x", "n": 2}
    w.close()
    assert w.proc.returncode == 0 and w not in process.live()


def test_a_worker_runs_in_a_process_group_of_its_own():
    w = worker(ECHO)
    try:
        assert os.getpgid(w.pid) == w.pid != os.getpgid(0)
    finally:
        w.close()


def test_no_answer_in_time_is_a_timeout_and_the_whole_group_is_killed_even_ignoring_sigterm():
    body = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
            "print(child.pid, file=sys.stderr, flush=True)\n"
            "time.sleep(600)\n")
    w = worker(body)
    start = time.monotonic()
    with pytest.raises(ImplementationGone) as info:
        ask(w, timeout=1.0)
    assert info.value.verdict is Verdict.TIMEOUT
    assert "no answer to ping within 1 s; the worker was killed (it ignored SIGTERM: SIGKILL)" in str(info.value)
    assert time.monotonic() - start < 10
    grandchild = int(w.stderr.text().split()[0])
    time.sleep(0.1)
    assert not alive(w.pid) and not alive(grandchild)


@pytest.mark.parametrize(("body", "words"), [
    ("import os; os._exit(0)", "exit status 0"),
    ("import sys; sys.stdin.readline(); sys.exit(3)", "exit status 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "killed by SIGSEGV"),
    ("import os, sys, time; sys.stdin.readline(); os.close(1); time.sleep(600)", "it closed its output and was killed (SIGTERM)"),
])
def test_a_worker_that_dies_or_closes_its_output_has_crashed(body, words):
    w = worker(body)
    with pytest.raises(ImplementationGone) as info:
        ask(w)
    assert info.value.verdict is Verdict.CRASHED and words in str(info.value)
    w.close()


def test_what_a_worker_prints_on_stderr_costs_a_bounded_tail_and_its_end_is_reported():
    body = ("import sys\nsys.stderr.write('start\\n' + 'x' * (20 << 20) + '\\nthe last words\\n'); sys.stderr.flush()\n"
            "sys.stdin.readline(); sys.exit(1)\n")
    w = worker(body)
    with pytest.raises(ImplementationGone) as info:
        ask(w)
    text = w.stderr.text()
    assert len(text) < 70_000 and w.stderr.dropped > 20_000_000
    assert text.startswith("start") and text.rstrip().endswith("the last words")
    assert "its stderr ends:" in str(info.value) and "the last words" in str(info.value)


def test_output_that_is_not_the_protocol_kills_the_worker(monkeypatch):
    w = worker("import sys; sys.stdin.readline(); print('hello, world', flush=True); import time; time.sleep(600)")
    with pytest.raises(wire.ProtocolError, match="not JSON.*hello, world.*killed"):
        ask(w)
    assert not alive(w.pid)
    monkeypatch.setattr(wire, "MAX_LINE", 1 << 16)
    w = worker("import sys; sys.stdin.readline(); sys.stdout.write('x' * (1 << 20)); sys.stdout.flush(); "
               "import time; time.sleep(600)")
    with pytest.raises(wire.ProtocolError, match="without a newline"):
        ask(w)
    assert not alive(w.pid)


def test_a_worker_that_does_not_read_its_input_times_out_rather_than_blocking_the_harness():
    w = worker("import time; time.sleep(600)")
    line, buffers = wire.encode({"id": 1, "x": __import__("numpy").zeros(1 << 20)})  # 8 MB: more than a pipe holds
    with pytest.raises(ImplementationGone) as info:
        w.request(line, buffers, timeout=1.0, phase="step", limit=1 << 20)
    assert info.value.verdict is Verdict.TIMEOUT


def test_a_program_that_cannot_start_is_an_error_naming_it():
    with pytest.raises(ImplementationGone) as info:
        WorkerProcess(["/no/such/program"])
    assert info.value.verdict is Verdict.ERROR and "cannot start '/no/such/program'" in str(info.value)


def test_kill_all_ends_every_live_worker_and_none_starts_while_stopping():
    workers = [worker("import time; time.sleep(600)") for _ in range(2)]
    process.kill_all()
    for w in workers:
        assert w.proc.returncode == -signal.SIGKILL
        w.close()
    with process.stopping(), pytest.raises(ImplementationGone, match="the harness is stopping"):
        worker(ECHO)
    w = worker(ECHO)  # and after, they start again
    w.close()


def test_the_tail_keeps_head_and_end_and_counts_what_it_dropped():
    tail = OutputTail(head=4, tail=6)
    for chunk in (b"abcdefgh", b"ijklmnop", b"qrstuvwxyz"):
        tail.feed(chunk)
    assert tail.text() == "abcd\n[... 16 bytes left out ...]\nuvwxyz"
    assert tail.dropped == 16


def test_a_crash_report_keeps_the_crashing_frame_not_the_list_of_extension_modules():
    tail = OutputTail()
    tail.feed(b"some output before\nFatal Python error: Segmentation fault\n\nCurrent thread (most recent call first):\n"
              b'  File "/m/hmaps.py", line 9 in segv\n' + b'  File "/h/runner.py", line 35 in run\n' * 60
              + b"\nExtension modules: numpy._core._multiarray_umath, " + b"numpy.random._sfc64, " * 80
              + b"\nnumpy.random.mtrand (total: 23)\n")
    shown = tail.last_lines(300)
    assert shown.startswith("Fatal Python error: Segmentation fault") and 'File "/m/hmaps.py", line 9 in segv' in shown
    assert shown.endswith("...") and "Extension modules" not in tail.last_lines(10**6)


@pytest.mark.parametrize(("code", "words"), [(0, "exit status 0"), (-9, "killed by SIGKILL"), (None, "still running")])
def test_exits_are_described(code, words):
    assert describe_exit(code) == words


def test_a_closed_worker_is_reaped_not_left_a_zombie():
    w = worker("import time; time.sleep(0.2)")
    w.close()
    assert not os.path.exists(f"/proc/{w.pid}")


def test_memory_limited_sets_the_address_space_limit_of_the_worker_and_its_children():
    import subprocess
    import sys

    from harness.workers.process import memory_limited

    probe = "import resource, subprocess, sys; print(resource.getrlimit(resource.RLIMIT_AS)[0]); sys.stdout.flush(); " \
            "subprocess.run([sys.executable, '-c', 'import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])'])"
    out = subprocess.run(memory_limited([sys.executable, "-c", probe], 3 << 30), capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == [str(3 << 30)] * 2
    with pytest.raises(ValueError, match="expected a number of bytes > 0"):
        memory_limited(["x"], 0)
