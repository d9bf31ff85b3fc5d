"""The one executor interface every fan-out of tasks goes through: a
``concurrent.futures.Executor`` -- local pool processes by default (``-j N``), Dask
when asked (``--scheduler tcp://HOST:PORT``, or ``local`` for a ``LocalCluster``).

``run_tasks`` submits plain task descriptions and returns their plain results in
order, whichever executor ran them. A task the executor loses -- a pool process or a
Dask worker that died under it -- is the engine's fault, never the implementation's:
it is tried once more, then reported as ``INFRA_ERROR`` (Dask retries by itself:
``distributed.scheduler.allowed-failures`` is 1, two attempts in all, then
``KilledWorker``). An implementation that crashes only ends its own worker process,
started by the task, so neither the pool nor the cluster notices.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import re
import signal
import sys
import threading
from collections.abc import Callable

from harness.executors.tasks import infra_result

LOCAL = "local"
DASK_MISSING = ("--scheduler needs Dask, which is not installed here: pip install 'backprop-harness[dask]' "
                "(dask and distributed)")
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://[^\s/]+(:\d+)?/?$")
ALLOWED_FAILURES = 1  # a Dask task whose worker died is tried on one more worker, then KilledWorker


class SchedulerError(ValueError):
    """``--scheduler`` cannot be used: bad address, unreachable, or Dask missing (exit 2)."""


class Engine:
    """An open executor and what ``close`` must end with it (a Dask client, a local
    cluster). ``kind`` is ``"local"`` or ``"dask"``."""

    def __init__(self, executor: cf.Executor, kind: str, jobs: int, closers=(), remake: Callable | None = None):
        self.executor, self.kind, self.jobs = executor, kind, jobs
        self._closers, self._remake = list(closers), remake

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(cancel=exc[0] is not None)

    def close(self, *, cancel: bool = False) -> None:
        if isinstance(self.executor, cf.ThreadPoolExecutor):
            if cancel:  # Ctrl-C, or a bug: the workers die first, so that no thread waits on one
                from harness.workers import process

                with process.stopping():
                    process.kill_all()
                    self.executor.shutdown(wait=True, cancel_futures=True)
            else:
                self.executor.shutdown(wait=True)
        elif self.kind == "local":
            if cancel:  # Ctrl-C, or a bug: each pool process kills its workers and ends (_pool_process)
                # _processes: the pool's processes by pid (CPython's, not public; hence the care)
                for pool_process in list((getattr(self.executor, "_processes", None) or {}).values()):
                    with contextlib.suppress(OSError, AttributeError):
                        pool_process.terminate()
            self.executor.shutdown(wait=not cancel, cancel_futures=True)
        else:  # Dask's executor has no cancel_futures; closing the client cancels what is left
            self.executor.shutdown(wait=not cancel)
        for close in self._closers:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a cluster that is already gone
                pass
        self._closers = []

    def renew(self) -> None:
        """A new pool after the old one broke (local only: Dask's cluster heals itself)."""
        if self._remake is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = self._remake()


def open_engine(jobs: int, scheduler: str | None = None, *, lending: bool = False) -> Engine:
    """Local pool processes (``jobs`` of them), or Dask at ``scheduler``. ``lending``:
    locally, ``jobs`` threads of the harness instead, for tasks the harness lends a
    live worker process of its own (``check``: a lane then reuses the worker that
    planned it, and a compiled step already compiled); the work is still done in
    local worker processes, one per implementation and lane."""
    if scheduler is None and lending:
        return Engine(cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lane"), "local", jobs)
    if scheduler is None:
        def make():
            return _unshared_feeder_lock(cf.ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                                                                initializer=_pool_process))

        return Engine(make(), "local", jobs, remake=make)
    return _open_dask(scheduler, jobs)


def _pool_process() -> None:
    """In each pool process: SIGTERM (the harness stopping) kills the workers its task
    started -- they run in sessions of their own, so nothing else would -- then ends it."""
    def stop(*_):
        from harness.workers import process

        with process.stopping():
            process.kill_all()
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)


def _unshared_feeder_lock(pool: cf.ProcessPoolExecutor) -> cf.ProcessPoolExecutor:
    """``pool``, clear of a deadlock of CPython 3.12.0-3.12.7 and 3.13.0 (gh-125451).
    There, the thread that feeds tasks to the pool's processes takes the pool's
    shutdown lock when a task fails to go out. The pool's manager thread holds that
    lock when the pool breaks, and waits for the feeder to end. A pool that breaks
    while a task is going out (a task killed its pool process) then never lets go
    of the lock: the next ``shutdown`` -- ours, to make a new pool, or the
    interpreter's at exit -- waits for good. As in the fix (3.12.8, 3.13.1), the
    feeder gets a lock of its own. That lock guards only the manager's wake-up
    pipe, which is closed after the feeder has ended."""
    version = sys.version_info[:3]
    if (3, 12) <= version < (3, 12, 8) or version == (3, 13, 0):
        queue = getattr(pool, "_call_queue", None)  # CPython's, not public
        if queue is not None and hasattr(queue, "shutdown_lock"):
            queue.shutdown_lock = threading.Lock()
    return pool


def _context():
    # forkserver: a pool process never inherits the harness's threads (the progress
    # display, stderr drains) halfway through something; the task modules load once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["harness.executors.tasks", "harness.checks.runner", "harness.workers.remote"])
    return context


def check_scheduler(scheduler: str) -> None:
    """``SchedulerError`` when ``scheduler`` is no Dask address (nor ``local``) or Dask
    is not installed: what can be said before any work, without reaching it."""
    import importlib.util

    if scheduler != LOCAL and not _ADDRESS.match(scheduler):
        raise SchedulerError(f"--scheduler {scheduler!r}: expected a Dask scheduler address such as tcp://HOST:8786, "
                             f"or {LOCAL!r} for a cluster on this machine")
    if importlib.util.find_spec("distributed") is None or importlib.util.find_spec("dask") is None:
        raise SchedulerError(DASK_MISSING)


def _open_dask(scheduler: str, jobs: int) -> Engine:
    check_scheduler(scheduler)
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError(DASK_MISSING) from None
    import logging

    # Before the cluster exists: its scheduler reads the setting when it starts. A
    # remote scheduler needs it in its own configuration (README: "Dask").
    dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES})
    logging.getLogger("distributed").setLevel(logging.ERROR)  # a worker's death is in the results, not a log wall
    closers = []
    try:
        if scheduler == LOCAL:
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
            closers.append(cluster.close)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError) as exc:
        for close in closers:
            close()
        raise SchedulerError(f"--scheduler {scheduler}: cannot reach the Dask scheduler: {exc}") from None
    closers.insert(0, client.close)
    return Engine(client.get_executor(pure=False), "dask", jobs, closers)


def lost(exc: BaseException) -> str | None:
    """Why ``exc`` means the executor lost the task (a fault of the engine), or ``None``
    when it is something else (a bug of the harness, raised to the caller)."""
    from concurrent.futures.process import BrokenProcessPool  # (cf.process exists only once a pool was made)

    if isinstance(exc, BrokenProcessPool):
        return f"a pool process of the harness died under the task ({exc})"
    if isinstance(exc, cf.CancelledError):
        return "the executor cancelled the task (its client or cluster closed)"
    try:
        from distributed import KilledWorker
        from distributed.client import FutureCancelledError
        from distributed.comm.core import CommClosedError
    except ImportError:
        return None
    if isinstance(exc, KilledWorker):
        return (f"the Dask worker running the task died {ALLOWED_FAILURES + 1} times (the executor lost the task, "
                "not the implementation's crash; the implementation runs in a process of its own)")
    if isinstance(exc, (FutureCancelledError, CommClosedError)):
        return f"the executor lost the task: {type(exc).__name__}: {exc}"
    return None


def run_tasks(engine: Engine, function: Callable, tasks: list, labels: list[str], *,
              on_done: Callable | None = None, after: list | None = None, lost_as: Callable = infra_result) -> list:
    """``function(task)`` for every task through ``engine``; the results in order. Tasks
    start in their order, as room frees up (put long ones first);
    ``after[i]``, when not ``None``, is the index of a task that must finish before task
    ``i`` is submitted (a second worker of an implementation that compiles starts once
    the first has filled the compiler's caches on disk). A task the executor loses is
    tried once more (locally, alone in the pool, so that a task that kills its pool
    process cannot take an innocent one down twice; Dask has retried it already), then its result is
    ``lost_as(label, why)`` (by default ``infra_result``, an INFRA_ERROR check
    record). ``on_done(index, result)`` as each finishes."""
    results: list = [None] * len(tasks)
    attempts = [0] * len(tasks)
    after = list(after) if after is not None else [None] * len(tasks)
    finished = [False] * len(tasks)
    waiting = list(range(len(tasks)))  # not yet submitted
    running: dict = {}

    # a local pool is given no more than it can start, so that a task waiting for
    # another is not queued behind the rest when it becomes ready (Dask gets all at once)
    room = engine.jobs if engine.kind == "local" else len(tasks)

    def submit_ready() -> None:
        ready = [i for i in waiting if after[i] is None or finished[after[i]]]
        retries = [i for i in ready if attempts[i]]
        if retries:  # a task tried again runs alone: a task that kills its pool process then takes only itself down
            ready = retries[:1] if not running else []
        for index in ready[:max(0, room - len(running))]:
            waiting.remove(index)
            attempts[index] += 1
            try:
                running[engine.executor.submit(function, tasks[index])] = index
            except RuntimeError as exc:  # the pool broke while submitting
                running[_failed(exc)] = index

    def settle(future) -> None:
        index = running.pop(future)
        exc = future.exception()
        if exc is not None:
            why = lost(exc)
            if why is None:
                raise exc
            if engine.kind == "local":
                broken[0] = True
                if attempts[index] < ALLOWED_FAILURES + 1:
                    waiting.append(index)
                    return
            results[index] = lost_as(labels[index], why)
        else:
            results[index] = future.result()
        finished[index] = True
        if on_done is not None:
            on_done(index, results[index])

    broken = [False]
    submit_ready()
    while running:
        for future in cf.wait(list(running), return_when=cf.FIRST_COMPLETED)[0]:
            settle(future)
        if broken[0]:  # the tasks still in the broken pool end with it: settle them, then a new pool
            for future in cf.wait(list(running))[0]:
                settle(future)
            engine.renew()
            broken[0] = False
        waiting.sort()
        submit_ready()
    return results


def _failed(exc: BaseException) -> cf.Future:
    future: cf.Future = cf.Future()
    future.set_exception(exc)
    return future
