"""Work on several workers at once: lanes of items, each lane run in order in a
thread of the harness (which judges there while the lane's worker computes), the
lanes spread over ``jobs`` threads, the results returned in the planned order.

Ctrl-C in the harness kills every worker (their process groups) at once, lets the
threads see their workers gone, and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from harness.core.protocol import ImplementationError, ImplementationGone, RemoteError
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
    """``work(payload)`` for every item of every lane; returns ``{index: result}``."""
    results: dict = {}
    stop = threading.Event()

    def run_lane(lane: Lane) -> None:
        for index, payload in lane.items:
            if stop.is_set():
                return
            results[index] = work(payload)
            if on_done is not None:
                on_done(index, results[index])

    ordered = sorted(lanes, key=lambda lane: -lane.cost)
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="lane") as executor:
        pending = {executor.submit(run_lane, lane) for lane in ordered}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a bug in the harness itself surfaces here
        except BaseException:
            stop.set()
            _stop_everything(executor)
            raise
    return results


def _stop_everything(executor) -> None:
    # In the main thread: a second Ctrl-C must not cut the cleanup short.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if threading.current_thread() is threading.main_thread() else None
    try:
        with process.stopping():
            process.kill_all()
            executor.shutdown(wait=True, cancel_futures=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def start_all(impls, jobs: int) -> list[tuple | None]:
    """Start every worker implementation (``start``: load the implementation, learn its
    capabilities), ``jobs`` at a time; per implementation ``None``, or the verdict its
    failure earns and why: ``(Verdict, message)``."""
    from harness.core.results import Verdict

    def start(impl):
        try:
            impl.start()
            return None
        except ImplementationGone as exc:
            return exc.verdict, str(exc)
        except (RemoteError, ImplementationError) as exc:
            return Verdict.ERROR, str(exc)

    lanes = [Lane([(i, impl)]) for i, impl in enumerate(impls)]
    outcomes = run_lanes(lanes, start, jobs)
    return [outcomes[i] for i in range(len(impls))]
