"""A ``train --model`` trainee's step in a process of its own, behind the worker
protocol's framing (``harness.workers.wire``: JSON lines, arrays as raw buffers).

``python -m harness.executors.network_worker TASK`` reads its ``NetworkTrainTask``
(written by the process that runs the task: data flowing to the trainee, never from
it), builds the trainee's step on ``define`` and answers each ``evaluate`` with the
step's loss and gradients. Everything else -- the SGD update, the reference's
trajectory, the divergence, the accuracy -- stays with ``RemoteNetworkStep``'s side:
a provider's operators run where nothing of the judging does, and what comes back
is numbers only, never unpickled. A step that raises is answered as an error; one
that exits, crashes or goes past the time limit ends the process, which the other
side reports as CRASHED or TIMEOUT.
"""

from __future__ import annotations

import sys

import numpy as np

from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.workers import wire

_SMALL = 1 << 16


class RemoteNetworkStep:
    """``step(params, x, y) -> (loss, gradients)`` run in a worker process, each call
    (building the step first) under ``timeout`` seconds. ``error``: why its run must
    end (``CRASHED: ...``, ``TIMEOUT: ...`` or what the step raised), once it must."""

    def __init__(self, given, timeout: float):
        from harness.workers.process import WorkerProcess

        self.worker = WorkerProcess([sys.executable, "-m", "harness.executors.network_worker", str(given)])
        self.timeout, self.ids, self.error = timeout, 0, ""

    def _round(self, message: dict, phase: str, limit: int) -> dict:
        self.ids += 1
        line, buffers = wire.encode({"id": self.ids, **message}, "buffer")
        try:
            answer = self.worker.request(line, buffers, timeout=self.timeout, phase=phase, limit=limit)
            if answer.get("id") != self.ids:
                self.worker.kill()
                raise wire.ProtocolError(f"{phase}: an answer with id {answer.get('id')!r} to the request with id {self.ids}")
        except ImplementationGone as exc:
            self.error = f"{exc.verdict.value}: {exc}"
            raise
        except wire.ProtocolError as exc:
            self.error = f"ERROR: {exc}"
            raise
        if answer.get("success") is not True:
            self.error = str(answer.get("error") or f"{phase} failed without a reason")
            raise RemoteError(self.error)
        return answer

    def build(self) -> str:
        """Build the trainee's step in the worker: "" when built, else why not."""
        try:
            self._round({"kind": "define"}, "building the trainee's step", _SMALL)
        except (ImplementationGone, wire.ProtocolError, RemoteError):
            return self.error
        return ""

    def __call__(self, params, x, y):
        groups = [list(group) for group in params]
        limit = 4 * sum(np.asarray(a).nbytes for group in groups for a in group) + _SMALL
        answer = self._round({"kind": "evaluate", "function": "step", "input": {"params": groups, "x": x, "y": y}},
                             "step", limit)
        output = answer.get("output")
        grads = output.get("grads") if isinstance(output, dict) else None
        if (not isinstance(grads, list) or len(grads) != len(groups)
                or any(not isinstance(g, list) or len(g) != len(p) for g, p in zip(grads, groups))):
            self.error = "ERROR: the step's answer has no gradients shaped like the parameters' groups"
            raise RemoteError(self.error)
        return np.asarray(output.get("loss"), np.float64), [tuple(group) for group in grads]

    def close(self) -> None:
        self.worker.close(grace=0.5)


def build_step(task):
    """The trainee's ``step(params, x, y)`` for ``task`` (a ``NetworkTrainTask``), built here."""
    from harness.networks.cnn import from_plain
    from harness.networks.providers import OpsProvider
    from harness.networks.steps import chain_step
    from harness.networks.torch_cnn import TORCH_CNN, torch_cnn_step

    network = from_plain(task.network)
    if task.trainee == TORCH_CNN:
        return torch_cnn_step(network, task.threads)
    return chain_step(network, OpsProvider(task.trainee))


def serve(given: str) -> int:
    import pickle
    from pathlib import Path

    from harness.core.containment import described, restoring_global_state
    from harness.core.process_settings import pin_threads
    from harness.workers.python_worker import as_numpy, protect_channels

    proto_in, proto_out = protect_channels()  # what the trainee prints goes to stderr
    path, task = pickle.loads(Path(given).read_bytes())
    sys.path[:] = path  # where the process the task was given finds the trainee's plug-in
    task = pickle.loads(task)
    if task.threads:
        pin_threads(task.threads)
    step = None
    while True:
        try:
            message = wire.read_message(proto_in)
        except wire.ProtocolError as exc:
            print(f"network_worker: {exc}", file=sys.stderr)
            return 2
        if message is None:
            return 0
        try:
            with restoring_global_state():  # what the plug-in changes is put back after each call
                if message.get("kind") == "define":
                    step = build_step(task)
                    answer = {"success": True}
                elif step is None:
                    answer = {"success": False, "error": "no step built (define comes first)"}
                else:
                    body = message.get("input") or {}
                    loss, grads = step([tuple(g) for g in body["params"]], body["x"], body["y"])
                    answer = {"success": True, "output": {"loss": as_numpy(loss),
                                                          "grads": [[as_numpy(g) for g in group] for group in grads]}}
            line, buffers = wire.encode({"id": message.get("id"), **answer}, "buffer")
        except BaseException as exc:  # noqa: BLE001 -- SystemExit too: the trainee's error, reported
            line, buffers = wire.encode({"id": message.get("id"), "success": False, "error": described(exc)}, "buffer")
        wire.write_message(proto_out, line, buffers)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
