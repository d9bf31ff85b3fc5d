"""Work on several workers at once: lanes of items, each lane run in order in a
thread of the harness, the lanes spread over ``jobs`` threads, the results returned
in the planned order (``start_all``: the workers started side by side, before any
check; the checks themselves are executor tasks, ``harness.executors``).

Ctrl-C in the harness kills every worker (their process groups) at once, lets the
threads see their workers gone, and re-raises ``KeyboardInterrupt``; no worker starts
meanwhile.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.protocol import ImplementationError
from harness.workers import process


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Lane:
    """Items run in order by one thread (and so by one worker); ``cost`` orders the
    lanes, longest first, so that the last to finish is not a long one started late."""

    items: list = field(default_factory=list)  # (index in the results, payload)
    cost: float = 0.0


def run_lanes(lanes: list[Lane], work: Callable, jobs: int, *, on_done: Callable | None = None) -> dict:
    """``work(payload)`` for every item of every lane, over ``jobs`` threads (one: in
    the calling thread); returns ``{index: result}``."""
    results: dict = {}
    pending = sorted(lanes, key=lambda lane: -lane.cost)
    state = threading.Lock()
    stop = threading.Event()
    failures: list = []

    def next_lane() -> Lane | None:
        with state:
            if pending and not stop.is_set():
                return pending.pop(0)
            return None

    def run_lane(lane: Lane) -> None:
        for index, payload in lane.items:
            if stop.is_set():
                return
            results[index] = work(payload)
            if on_done is not None:
                on_done(index, results[index])

    def runner() -> None:
        while (lane := next_lane()) is not None:
            try:
                run_lane(lane)
            except BaseException as exc:  # a bug in the harness itself: stop, and raise it in the caller
                failures.append(exc)
                stop.set()

    if jobs <= 1:  # in this thread: in-process plug-ins and the user's Ctrl-C stay in the main thread
        try:
            while (lane := next_lane()) is not None:
                run_lane(lane)
        except BaseException:
            with process.stopping():
                process.kill_all()
            raise
        return results
    threads = [threading.Thread(target=runner, name=f"lane-{n}", daemon=True) for n in range(jobs)]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(0.25)
    except BaseException:
        stop.set()
        _stop_everything(threads)
        raise
    if failures:
        raise failures[0]
    return results


def _stop_everything(threads) -> None:
    # In the main thread: a second Ctrl-C must not cut the cleanup short.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() else None
    try:
        with process.stopping():
            process.kill_all()
            for thread in threads:
                thread.join()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def start_all(impls, jobs: int) -> list[tuple | None]:
    """Start every worker implementation (``start``: load the implementation, learn its
    capabilities), ``jobs`` at a time; per implementation ``None``, or the verdict its
    failure earns and why: ``(Verdict, message)``, or the ``DeclarationRefused`` its
    worker answered (a wrong declaration is bad input, not the plug-in's ERROR)."""
    from harness.core.results import Verdict
    from harness.workers.remote import DeclarationRefused

    def start(impl):
        try:
            impl.start()
            return None
        except DeclarationRefused as exc:  # bad input: the caller raises it
            return exc
        except ImplementationGone as exc:
            return exc.verdict, str(exc)
        except (RemoteError, ImplementationError) as exc:
            return Verdict.ERROR, str(exc)

    lanes = [Lane([(i, impl)]) for i, impl in enumerate(impls)]
    outcomes = run_lanes(lanes, start, jobs)
    return [outcomes[i] for i in range(len(impls))]
