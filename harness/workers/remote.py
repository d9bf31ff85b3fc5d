"""An implementation that runs in a worker process: ``WorkerImplementation``.

It is an ``Implementation`` like any other -- the checks, the planner, the
conformance suite, ``bench`` and ``train`` use it unchanged -- but ``prepare``,
``step``, ``forward`` and ``set_params`` are messages to a worker, and what comes
back is only arrays and timings, judged here. A worker that dies, hangs or breaks
the protocol costs the call in progress (CRASHED, TIMEOUT, ERROR); the next
``prepare`` starts a new one.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import weakref

import numpy as np

from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.protocol import Capabilities, Implementation, ImplementationError, Prepared
from harness.core.results import Verdict
from harness.workers import messages, process, wire
from harness.workers.segment import Arena, Kept

DEFAULT_TIMEOUT = 300.0
PYTHON_WORKER = "harness.workers.python_worker"
_SMALL = 1 << 20  # the most an answer without arrays may take


def _nbytes(arrays) -> int:
    return sum(np.asarray(a).nbytes for a in arrays)


def python_environment(threads: int | None = None) -> dict:
    """The environment of a worker: the harness's ``sys.path`` (so ``module:attr``
    from the current directory imports there too) and, with ``threads``, every
    BLAS/OpenMP pool limited to that many threads before anything starts."""
    env = dict(os.environ)
    paths = [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if os.path.isdir(p)))
    env.setdefault("PYTHONFAULTHANDLER", "1")  # a segfault leaves a traceback on stderr
    if threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    return env


def python_target(obj) -> str:
    """The text a Python worker loads ``obj`` by: a string as it is, else
    ``module:name`` of the module-level function, class or object it is (unwrapping
    what ``as_implementation`` made of it). One defined inside a function, in
    ``__main__`` or nowhere importable cannot run in a worker, and says so."""
    if isinstance(obj, str):
        return obj
    inner = getattr(obj, "function", None) or getattr(obj, "inner", None) or obj
    for candidate in (inner, type(inner)):
        module = sys.modules.get(getattr(candidate, "__module__", "") or "")
        if module is None or module.__name__ == "__main__":
            continue
        qualname = getattr(candidate, "__qualname__", "")
        if qualname and "<" not in qualname and _lookup(module, qualname) is candidate and candidate is inner:
            return f"{module.__name__}:{qualname}"
        for attr, value in vars(module).items():  # an instance kept in a module-level name
            if value is inner:
                return f"{module.__name__}:{attr}"
    raise ValueError(f"{obj!r}: a worker process cannot import it; define it at module level (importable as "
                     "module:attr), give its registered name, or run it in process")


def _lookup(module, qualname: str):
    value = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value


class DeclarationRefused(ImplementationError):
    """The worker loaded the implementation and found its declaration wrong (what
    ``as_implementation`` refuses in process): bad input, not the plug-in's ERROR."""


class WorkerImplementation(Implementation):
    """An implementation served by the program ``argv`` over the worker protocol.

    ``WorkerImplementation.python(target)`` serves a Python plug-in of any form (a
    registered name or ``module:attr``) through ``harness.workers.python_worker``;
    ``WorkerImplementation.command("PROGRAM ARGS")`` runs any program. The worker
    starts on first use (``start``), which tells its name and capabilities."""

    def __init__(self, argv, *, name: str = "", timeout: float = DEFAULT_TIMEOUT, env=None, threads: int | None = None,
                 pin: bool = False, shared_memory: bool = False, label: str = "", return_inputs: bool = True,
                 cwd: str | None = None, memory_limit: int | None = None):
        if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
            raise ValueError(f"timeout={timeout!r}: expected a finite number of seconds > 0")
        # threads: every BLAS/OpenMP pool of the worker limited to that many (environment);
        # pin: also pinned and the allocator kept steady inside it, for timing (bench)
        self.argv, self.timeout, self.threads, self.pin = list(argv), float(timeout), threads, pin
        self.env = env if env is not None else python_environment(threads)
        self.label = label or name or shlex.join(self.argv)  # how the user named it
        # until the worker says its name (start), the text that named it stands in
        self.name, self._name_given = name or self.label, bool(name)
        self.shared_memory = shared_memory
        # cwd: where the worker runs; memory_limit: its address space in bytes (RLIMIT_AS)
        self.cwd, self.memory_limit = cwd, memory_limit
        # Each step's inputs sent back and copied over the caller's (what inputs_not_mutated
        # needs); bench and train, which do not judge inputs, leave it off. It also says
        # the answers are judged: their arrays are then copied out of shared memory, which
        # the worker can still write to, instead of lent as views of it.
        self.return_inputs = return_inputs
        self.description = ""
        self._declared: dict | None = None
        self._worker: process.WorkerProcess | None = None
        self._arena: Arena | None = None
        self._generation = 0
        self._ids = 0
        self._released: list[int] = []
        self._lock = threading.RLock()

    @classmethod
    def python(cls, target: str, **kwargs) -> WorkerImplementation:
        kwargs.setdefault("shared_memory", True)
        kwargs.setdefault("label", target)
        return cls([sys.executable, "-m", PYTHON_WORKER, target], **kwargs)

    @classmethod
    def command(cls, text: str, **kwargs) -> WorkerImplementation:
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise ValueError(f"cmd:{text}: {exc}") from None
        if not argv:
            raise ValueError("cmd: needs a program, e.g. cmd:'./mlp --worker'")
        kwargs.setdefault("label", f"cmd:{text}")
        return cls(argv, **kwargs)

    def clone(self) -> WorkerImplementation:
        """Another worker process for the same implementation (for a parallel lane)."""
        twin = WorkerImplementation(self.argv, name=self.name, timeout=self.timeout, env=self.env, threads=self.threads,
                                    pin=self.pin, shared_memory=self.shared_memory, label=self.label,
                                    return_inputs=self.return_inputs, cwd=self.cwd, memory_limit=self.memory_limit)
        twin._declared, twin.description, twin.name, twin._name_given = self._declared, self.description, self.name, True
        return twin

    # --- the handshake ---------------------------------------------------------------

    def start(self) -> None:
        """Start the worker if none is running, and learn (or confirm) what it declares."""
        with self._lock:
            if self._worker is not None and self._worker.alive():
                return
            self._stop()
            self._worker = process.WorkerProcess(self.argv, env=self.env, cwd=self.cwd, memory_limit=self.memory_limit)
            self._generation += 1
            config = {"protocol": wire.PROTOCOL, "arrays": list(wire.ARRAY_FORMS),
                      "threads": self.threads if self.pin else None}
            if self.shared_memory:
                self._arena = Arena.create()
                if self._arena is not None:
                    config["shared_memory"] = self._arena.describe()
            answer = self._round({"kind": "start", "eval": "backprop-harness", "config": config}, "start (loading it)")
            if answer.get("success") is False:
                error = answer.get("error") or "no reason given"
                self._stop()
                if answer.get("refused") is True:  # its declaration is wrong: the user's input
                    raise DeclarationRefused(str(error))
                raise ImplementationGone(Verdict.ERROR, f"the worker could not load the implementation: {error}")
            declared = self._read_start(answer)
            if self._declared is not None and declared["capabilities"] != self._declared["capabilities"]:
                self._stop()
                raise ImplementationGone(Verdict.ERROR, "the restarted worker declared other capabilities than before")
            self._declared = declared
            if not self._name_given:
                self.name = declared["name"]
            self.description = declared["description"]

    def _read_start(self, answer: dict) -> dict:
        config = answer.get("config") or {}
        if not isinstance(config, dict):
            raise wire.ProtocolError("start: 'config' must be an object")
        if config.get("protocol", wire.PROTOCOL) != wire.PROTOCOL:
            raise wire.ProtocolError(f"start: the worker speaks {config.get('protocol')!r}, the harness {wire.PROTOCOL!r}")
        form = config.get("arrays", "data")
        if form not in wire.ARRAY_FORMS:
            raise wire.ProtocolError(f"start: arrays {form!r} is not one of {', '.join(wire.ARRAY_FORMS)}")
        caps = messages.capabilities_from_json(config.get("capabilities"))
        unavailable = config.get("unavailable") or {}
        if not isinstance(unavailable, dict):
            raise wire.ProtocolError("start: 'unavailable' must map devices to reasons")
        if not config.get("shared_memory") and self._arena is not None:
            self._arena.close()
            self._arena = None
        return {"name": str(answer.get("tool") or self.label), "form": form, "capabilities": caps,
                "description": str(config.get("description") or ""), "unavailable": unavailable,
                "default_device": str(config.get("default_device") or caps.devices[0])}

    def _info(self) -> dict:
        if self._declared is None:
            self.start()
        return self._declared

    @property
    def capabilities(self) -> Capabilities:
        return self._info()["capabilities"]

    @capabilities.setter
    def capabilities(self, value):  # Implementation's class attribute; what the worker declares wins
        pass

    def default_device(self) -> str:
        return self._info()["default_device"]

    def unavailable_reason(self, device=None):
        info = self._info()
        device = device or info["default_device"]
        if device not in info["unavailable"] and device not in info["capabilities"].devices:
            return f"device {device!r} is not among those it declares ({', '.join(info['capabilities'].devices)})"
        reason = info["unavailable"].get(device)
        return str(reason) if reason else None

    # --- requests --------------------------------------------------------------------

    def _round(self, message: dict, phase: str, *, limit: int = _SMALL, reserve: int = 0, kept: Kept | None = None) -> dict:
        """One request and its answer; ``reserve``: room for the answer's arrays in shared
        memory; ``kept``: arrays of the message that stay in shared memory between requests."""
        worker = self._worker
        self._ids += 1
        message = {"id": self._ids, **message}
        form = self._declared["form"] if self._declared else "data"
        arena, lender = self._arena, None
        if arena is not None and message["kind"] != "start":
            line, buffers, lender = arena.encode(message, form, reserve, kept)
        else:
            line, buffers = wire.encode(message, form)
        try:
            answer = worker.request(line, buffers, timeout=self.timeout, phase=phase, limit=limit,
                                    segment=arena.buffer if arena is not None else None,
                                    lend=lender.lend if lender is not None and not self.return_inputs else None)
        finally:
            if lender is not None:
                lender.done()
        if answer.get("id") != message["id"]:
            worker.kill()
            raise wire.ProtocolError(f"{phase}: an answer with id {answer.get('id')!r} to the request with id {message['id']}")
        return answer

    def call(self, message: dict, phase: str, **kwargs) -> dict:
        """A request whose answer must say ``success``; a failure raises what the worker said."""
        with self._lock:
            answer = self._round(message, phase, **kwargs)
        if answer.get("success") is not True:
            raise WorkerError(str(answer.get("error") or f"{phase} failed without a reason"))
        return answer

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        with self._lock:
            self.start()
            released = [m for g, m in self._released if g == self._generation]
            self._released = []
            flat = [a for pair in params for a in pair]
            answer = self.call({"kind": "define", "module": "mlp", "input": {
                "network": messages.network_to_json(spec), "dtype": dtype, "device": device or self.default_device(),
                "input_grad": bool(input_grad), "params": [list(pair) for pair in params], "release": released,
            }}, "prepare", reserve=_SMALL)
            model = (answer.get("output") or {}).get("model")
            if not isinstance(model, int) or isinstance(model, bool):
                raise wire.ProtocolError(f"prepare: the answer names no model (an integer), got {model!r}")
            prepared = RemotePrepared(self, model, self._generation, params, input_grad, 4 * _nbytes(flat))
            weakref.finalize(prepared, self._released.append, (self._generation, model))
            return prepared

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._arena is not None:
            self._arena.close()
            self._arena = None
        self._released = []

    def command_line_name(self) -> str:
        return self.label

    def stderr_tail(self) -> str:
        return self._worker.stderr.last_lines() if self._worker is not None else ""

    def __repr__(self):
        return f"<worker implementation {self.name or self.label!r}>"


class WorkerError(RemoteError):
    """What the worker reported as an error (the plug-in raised): an ERROR verdict."""


class RemotePrepared(Prepared):
    """A model prepared in a worker. ``batch`` keeps the caller's arrays (each step
    sends them); after a step the worker sends its inputs back and they are copied
    into those arrays, so a step that changes its inputs is seen as it would be in
    this process."""

    def __init__(self, impl: WorkerImplementation, model: int, generation: int, params, input_grad: bool, limit: int):
        self.impl, self.model, self.generation = impl, model, generation
        self.params = [tuple(pair) for pair in params]
        self.input_grad = input_grad
        self.limit = limit
        self.pending_params = None
        self.last_seconds: float | None = None  # the last step as timed inside the worker

    def batch(self, x, y):
        if self.impl.return_inputs:  # each step's inputs are sent back and copied over these: no snapshot
            return x, y
        return KeptBatch(x, y)

    def _evaluate(self, function: str, batch, *, phase: str, extra=None, echo: bool = False) -> dict:
        x, y = batch
        if self.impl._generation != self.generation or self.impl._worker is None or not self.impl._worker.alive():
            raise ImplementationGone(Verdict.CRASHED, f"{phase}: the worker this model was prepared in is gone")
        body = {"model": self.model, "x": x, "y": y, "return_inputs": echo, **(extra or {})}
        if self.pending_params is not None:
            body["params"] = [list(pair) for pair in self.pending_params]
            self.pending_params = None
        batch_bytes = np.asarray(x).nbytes + np.asarray(y).nbytes
        # room for the answer: gradients, dx and the inputs sent back, in either float dtype
        limit = self.limit + 8 * batch_bytes + _SMALL
        kept = batch.kept if isinstance(batch, KeptBatch) else None
        if kept is not None:
            body["x"], body["y"] = kept.arrays
        return self.impl.call({"kind": "evaluate", "module": "mlp", "function": function, "input": body}, phase,
                              limit=limit, reserve=self.limit // 2 + 4 * batch_bytes if echo or function == "step" else _SMALL,
                              kept=kept)

    def step(self, batch):
        answer = self._evaluate("step", batch, phase="step", echo=self.impl.return_inputs)
        result = messages.step_from_json(answer.get("output"))
        self.last_seconds = _seconds(answer, "evaluate")
        inputs = answer["output"].get("inputs")
        if inputs is None:
            result.inputs_observed = False
        else:
            self._copy_back(inputs, batch)
        return result

    def _copy_back(self, inputs, batch) -> None:
        ours = [*(a for pair in self.params for a in pair), *batch]
        try:
            theirs = [*(a for pair in inputs["params"] for a in pair), inputs["x"], inputs["y"]]
        except (KeyError, TypeError):
            raise wire.ProtocolError("step: 'inputs' must hold params, x and y") from None
        if len(theirs) != len(ours) or any(np.shape(t) != np.shape(o) for t, o in zip(theirs, ours)):
            raise wire.ProtocolError("step: the inputs sent back are not shaped like those sent")
        for own, sent_back in zip(ours, theirs):
            if isinstance(own, np.ndarray) and own.flags.writeable:
                np.copyto(own, sent_back, casting="unsafe")

    def to_numpy(self, result):
        return result

    def forward(self, batch):
        answer = self._evaluate("forward", batch, phase="forward")
        output = answer.get("output")
        if not isinstance(output, dict) or "loss" not in output:
            raise wire.ProtocolError("forward: the output has no 'loss'")
        return np.asarray(output["loss"])

    def set_params(self, params) -> None:
        # Sent with the next step: training calls this every step, and a round of its
        # own would cost as much as the step's.
        self.pending_params = [tuple(pair) for pair in params]

    def timed_steps(self, batch, *, min_runs: int, min_seconds: float) -> list[float]:
        answer = self._evaluate("time", batch, phase="timed steps", extra={"min_runs": int(min_runs),
                                                                            "min_seconds": float(min_seconds)})
        samples = [t["nanoseconds"] / 1e9 for t in answer.get("timings") or () if isinstance(t, dict)
                   and t.get("name") == "evaluate" and isinstance(t.get("nanoseconds"), int)]
        if len(samples) < min_runs:
            raise wire.ProtocolError(f"timed steps: {len(samples)} 'evaluate' timings, at least {min_runs} asked for")
        return samples


class KeptBatch(tuple):
    """``(x, y)`` where inputs are not sent back (bench, train): a batch stepped on again
    and again is copied into shared memory by its first step only (``segment.Kept``: like
    a native batch in another process, it need not follow later changes to x or y)."""

    def __new__(cls, x, y):
        batch = super().__new__(cls, (x, y))
        batch.kept = Kept((x, y)) if isinstance(x, np.ndarray) and isinstance(y, np.ndarray) else None
        return batch


def _seconds(answer: dict, name: str) -> float | None:
    for t in answer.get("timings") or ():
        if isinstance(t, dict) and t.get("name") == name and isinstance(t.get("nanoseconds"), int):
            return t["nanoseconds"] / 1e9
    return None
