"""A worker process and its control: started in a session (process group) of its
own, its stderr kept as a bounded head and tail, every request under a time limit,
and the whole group killed -- SIGTERM, then SIGKILL after a grace period, so a
worker that ignores SIGTERM still dies, and so do its children.

Every live worker is known to this module: ``kill_all`` (on Ctrl-C, and at exit)
stops them all. A terminal's Ctrl-C does not reach a worker by itself (it is in
another process group): the harness decides how it ends.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time

from harness.core.out_of_process import ImplementationGone
from harness.core.results import Verdict
from harness.workers import wire

TAIL_HEAD, TAIL_END = 16 << 10, 48 << 10  # bytes of a worker's stderr kept: the first and the last
GRACE = 1.0  # seconds between SIGTERM and SIGKILL
_F_SETPIPE_SZ = 1031  # Linux: a 1 MiB pipe moves a seed-size gradient in fewer wake-ups
_LIVE: set = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set while the harness stops (Ctrl-C): no worker may start


class OutputTail:
    """The first ``head`` and the last ``tail`` bytes of a stream, and how many
    bytes between them were dropped: a worker that prints gigabytes costs this much."""

    def __init__(self, head: int = TAIL_HEAD, tail: int = TAIL_END):
        self.head_max, self.tail_max = head, tail
        self.head, self.tail = bytearray(), collections.deque()
        self.tail_len = self.dropped = 0
        self.lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            room = self.head_max - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_len += len(chunk)
            while self.tail_len > self.tail_max:
                excess, first = self.tail_len - self.tail_max, self.tail[0]
                if len(first) <= excess:
                    self.tail.popleft()
                    cut = len(first)
                else:
                    self.tail[0] = first[excess:]
                    cut = excess
                self.tail_len -= cut
                self.dropped += cut

    def text(self) -> str:
        with self.lock:
            middle = f"\n[... {self.dropped:,} bytes left out ...]\n".encode() if self.dropped else b""
            return (bytes(self.head) + middle + b"".join(self.tail)).decode("utf-8", "replace")

    def last_lines(self, chars: int = 1500) -> str:
        """The end of the text; after a crash, faulthandler's report from its start (its
        stack lists the most recent call first: the frame that crashed, in the user's
        code, would be cut from the end), without its list of the extension modules
        loaded (Python 3.11+: a thousand characters)."""
        text = _EXTENSION_MODULES.sub("\n", self.text()).strip()
        crash = text.rfind(_FATAL)
        if crash >= 0:
            text = text[crash:]
            return text if len(text) <= chars else text[:chars] + "..."
        return text if len(text) <= chars else "..." + text[-chars:]


_FATAL = "Fatal Python error:"
_EXTENSION_MODULES = re.compile(r"\n*Extension modules: [^\n]*?(?:\n[^\n]*?)*?\(total: \d+\)\n?")


def _drain(stream, tail: OutputTail) -> threading.Thread:
    def run():
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read(1 << 16):
                tail.feed(chunk)

    thread = threading.Thread(target=run, name="worker-stderr", daemon=True)
    thread.start()
    return thread


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


# Sets the address-space limit, then becomes the worker (exec keeps the limit). A
# small interpreter of its own rather than Popen's preexec_fn, which is not safe in
# a harness with threads (the child could deadlock before exec).
_LIMIT_THEN_EXEC = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
                    "os.execvp(sys.argv[2], sys.argv[2:])")


def memory_limited(argv, limit: int) -> list[str]:
    """``argv`` run with its address space (RLIMIT_AS) limited to ``limit`` bytes: an
    allocation past it fails in the worker (Python's MemoryError), and so do its
    children's (the limit is inherited)."""
    if not (isinstance(limit, int) and limit > 0):
        raise ValueError(f"memory limit {limit!r}: expected a number of bytes > 0")
    return [sys.executable, "-I", "-S", "-c", _LIMIT_THEN_EXEC, str(limit), *argv]


class WorkerProcess:
    """One running worker: ``request`` sends a message and waits for the answer.
    ``memory_limit``: bytes of address space (``memory_limited``)."""

    def __init__(self, argv, *, env=None, cwd=None, memory_limit: int | None = None):
        self.argv = list(argv)
        if _STOPPING.is_set():
            raise ImplementationGone(Verdict.CRASHED, "not started: the harness is stopping")
        try:
            self.proc = subprocess.Popen(memory_limited(self.argv, memory_limit) if memory_limit else self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         bufsize=0, env=env, cwd=cwd, start_new_session=True, close_fds=True)
        except OSError as exc:
            raise ImplementationGone(Verdict.ERROR, f"cannot start {self.argv[0]!r}: {exc.strerror or exc}") from None
        with _LIVE_LOCK:
            _LIVE.add(self)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.stderr = OutputTail()
        self._stderr_thread = _drain(self.proc.stderr, self.stderr)
        self._pending = bytearray()
        self._chunk = memoryview(bytearray(1 << 20))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.killed_by_us = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None and not self.killed_by_us

    # --- one round ---------------------------------------------------------------

    def request(self, line: bytes, buffers, *, timeout: float, phase: str, limit: int, segment=None, lend=None) -> dict:
        """Send one message and return the answer, arrays decoded. A worker that dies
        raises ``ImplementationGone`` (CRASHED), one past ``timeout`` is killed and
        raises it with TIMEOUT; a malformed answer kills it and raises ``ProtocolError``."""
        deadline = time.monotonic() + timeout
        try:
            for chunk in (line, *buffers):
                self._write(memoryview(chunk).cast("B"), deadline)
            answer = self._read_message(deadline, limit, segment, lend)
        except TimeoutError:
            self.kill()
            raise ImplementationGone(Verdict.TIMEOUT, f"no answer to {phase} within {timeout:g} s; the worker was "
                                                      f"{self.killed_by_us}{self._stderr_note()}") from None
        except (EOFError, BrokenPipeError):
            raise ImplementationGone(Verdict.CRASHED, f"the worker died during {phase}: {self._death()}"
                                                      f"{self._stderr_note()}") from None
        except wire.ProtocolError as exc:
            self.kill()
            raise wire.ProtocolError(f"{phase}: the worker broke the protocol: {exc}; it was {self.killed_by_us}"
                                     f"{self._stderr_note()}") from None
        except BaseException:  # Ctrl-C while waiting: this worker goes too
            self.kill(grace=0.2)
            raise
        return answer

    def _write(self, view: memoryview, deadline: float) -> None:
        fd, done = self.proc.stdin.fileno(), 0
        while done < len(view):
            try:
                done += os.write(fd, view[done:])
            except BlockingIOError:
                self._wait(selectors.EVENT_WRITE, self.proc.stdin, deadline)

    def _wait(self, event, stream, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        with selectors.DefaultSelector() as sel:
            sel.register(stream, event)
            if not sel.select(left):
                raise TimeoutError

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not self._selector.select(left):
            raise TimeoutError
        # into a buffer kept for the purpose: os.read(fd, 1 MiB) would allocate (and, past
        # malloc's mmap threshold, map and unmap) a megabyte for every answer line
        n = os.readv(self.proc.stdout.fileno(), [self._chunk])
        if not n:
            raise EOFError
        self._pending += self._chunk[:n]

    def _read_message(self, deadline: float, limit: int, segment, lend) -> dict:
        while (end := self._pending.find(b"\n")) < 0:
            if len(self._pending) > wire.MAX_LINE:
                raise wire.ProtocolError(f"more than {wire.MAX_LINE:,} bytes without a newline")
            self._fill(deadline)
        line = bytes(self._pending[: end + 1])
        del self._pending[: end + 1]
        message = wire.parse_line(line)
        descriptors = wire.buffer_sizes(message, limit)
        buffers = self._read_exact(sum(d["nbytes"] for d in descriptors), deadline)
        return wire.decode(message, descriptors, buffers, limit=limit, segment=segment, lend=lend)

    def _read_exact(self, n: int, deadline: float) -> bytearray:
        out = bytearray(n)
        got = min(n, len(self._pending))
        out[:got] = self._pending[:got]
        del self._pending[:got]
        view = memoryview(out)
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise TimeoutError
            k = os.readv(self.proc.stdout.fileno(), [view[got:]])
            if not k:
                raise EOFError
            got += k
        return out

    # --- the end -------------------------------------------------------------------

    def _death(self) -> str:
        try:  # stdout closed: wait a moment for the exit status, or end a worker that closed it and lives on
            self.proc.wait(0.5)
            return describe_exit(self.proc.returncode)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"it closed its output and was {self.killed_by_us}"

    def _stderr_note(self) -> str:
        self._stderr_thread.join(0.2)
        text = self.stderr.last_lines()
        return f"; its stderr ends: {text}" if text else ""

    def kill(self, grace: float = GRACE) -> None:
        """SIGTERM the worker's group, SIGKILL it after ``grace`` seconds, reap."""
        if self.proc.returncode is None:
            self.killed_by_us = "killed (SIGTERM)"
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.killed_by_us = "killed (it ignored SIGTERM: SIGKILL)"
        _signal_group(self.proc.pid, signal.SIGKILL)  # the leader may be gone and its children not
        self.proc.wait()
        self._forget()

    def close(self, grace: float = GRACE) -> None:
        """End of input (the protocol's goodbye), then ``kill`` whatever remains."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        if self.proc.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self.kill(grace)

    def _forget(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self)
        with contextlib.suppress(OSError, ValueError):
            self._selector.close()
            self.proc.stdout.close()
            self.proc.stdin.close()
        # stderr once its reader has seen the end (the group is dead): a descriptor fewer
        # per worker; one that a process outside the group keeps open stays, with its reader
        self._stderr_thread.join(0.5)
        if not self._stderr_thread.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.proc.stderr.close()


def _signal_group(pgid: int, sig) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def live() -> list[WorkerProcess]:
    with _LIVE_LOCK:
        return list(_LIVE)


def kill_all() -> None:
    """SIGKILL every live worker's group now (Ctrl-C, or the harness exiting). A
    thread waiting on one of them then sees it die and reports it as such."""
    for worker in live():
        worker.killed_by_us = worker.killed_by_us or "killed (the harness stopped)"
        _signal_group(worker.pid, signal.SIGKILL)
    for worker in live():
        with contextlib.suppress(Exception):
            worker.proc.wait(5)


class stopping(contextlib.ContextDecorator):
    """While inside, no worker starts (a thread's next check would start a new one)."""

    def __enter__(self):
        _STOPPING.set()
        return self

    def __exit__(self, *exc):
        _STOPPING.clear()
        return False


atexit.register(kill_all)
