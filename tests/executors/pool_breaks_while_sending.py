"""A local pool that breaks while a task is going out to it: run by
``test_engine.test_a_pool_that_breaks_while_a_task_goes_out_is_replaced_not_hung``
in a process of its own (``python -m tests.executors.pool_breaks_while_sending
MARKER``), so that a hang can be killed.

The first task kills its pool process while the pool's feeder thread is still
pickling the second one, which fails to go out (once): on CPython 3.12.0-3.12.7
and 3.13.0 the pool's manager thread then holds the pool's shutdown lock for good
(gh-125451) unless the engine gives the feeder a lock of its own."""

import os
import sys
import time

from harness.executors.engine import open_engine, run_tasks


def die_soon(marker):
    open(marker + ".died", "w").close()
    os._exit(7)


def wait_a_moment(n):
    time.sleep(0.5)
    return n


class FailsToGoOutOnce:
    """Pickled by the pool's feeder thread while its neighbour kills the pool: the first
    time it waits for that death, and for the pool's manager to see it, then fails to go
    out; after that it goes out as the string "sent"."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            deadline = time.monotonic() + 30
            while not os.path.exists(self.marker + ".died") and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(1.0)  # the manager thread sees the death, takes the lock and waits for this thread
            raise RuntimeError("this task could not go out this time")
        return str, ("sent",)


def call(task):
    function, argument = task
    return function(argument)


if __name__ == "__main__":
    with open_engine(2) as engine:
        # both pool processes up first: the dying task then dies while the second one is pickled
        assert run_tasks(engine, call, [(wait_a_moment, 1), (wait_a_moment, 2)], ["a", "b"]) == [1, 2]
        results = run_tasks(engine, call, [(die_soon, sys.argv[1]), (str, FailsToGoOutOnce(sys.argv[1]))],
                            ["doomed", "sent"])
    print(results[0]["runs"][0]["results"][0]["verdict"], results[1])
