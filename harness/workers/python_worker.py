"""``python -m harness.workers.python_worker TARGET``: a Python implementation behind
the worker protocol.

``TARGET`` is anything ``--impl`` accepted before workers existed: a registered name
or ``module:attr`` naming a function, an ``Implementation`` class or instance, or an
object with ``prepare`` (``harness.as_implementation`` adopts each form, as in
process). An entry point whose value is a ``harness.WorkerCommand`` is replaced by
that program (``exec``), which then speaks the protocol itself.

The protocol keeps private copies of stdin and stdout; the plug-in's own ``print``,
``sys.stdout`` and file descriptor 1 go to stderr (which the harness keeps a
bounded tail of), and it reads end-of-file on stdin, so nothing it does to them can
corrupt or close the protocol. Everything it raises -- ``SystemExit`` included -- is
answered as an error; what it does to end the process (``os._exit``, a signal) the
harness sees as a crash.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time

import numpy as np

from harness.core import registry
from harness.core.containment import restoring_global_state, summarise
from harness.core.out_of_process import WorkerCommand
from harness.core.process_settings import pin_threads, steady_allocator
from harness.core.protocol import ImplementationError, StepResult, availability, default_device, prepare
from harness.workers import messages, wire
from harness.workers import segment as segments


def protect_channels():
    """``(protocol in, protocol out)``; fd 0 then reads /dev/null and fd 1 writes to stderr."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115 (for the life of the process)
    sys.stdout = sys.stderr
    return proto_in, proto_out


def as_numpy(value):
    """``value`` as a NumPy array (a torch tensor detached and moved to the CPU first)."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _writes_where_told(prepared) -> bool:
    """Whether ``prepared.step`` takes ``out=``: it says so (``step_accepts_out``) and
    its signature has the argument (a subclass that overrides ``step`` may not)."""
    if getattr(prepared, "step_accepts_out", False) is not True:
        return False
    try:
        return "out" in inspect.signature(prepared.step).parameters
    except (TypeError, ValueError):
        return False


class Server:
    """Answers the protocol's messages for one implementation."""

    def __init__(self, impl):
        self.impl = impl
        self.models: dict[int, tuple] = {}
        self.layouts: dict[int, tuple] = {}
        self.next_model = 0
        self.form = "buffer"
        self.threads = None  # pin every pool to this many threads (timing), once the implementation has loaded them
        self.segment = None  # the harness's shared memory, when it offers some
        self.in_place = None  # (start, end, known): where this answer's gradients were written by the step itself
        self._views = None  # (grant, views, in_place) of the last step that wrote in place

    def start(self, message: dict) -> dict:
        config = message.get("config") or {}
        offered = config.get("arrays") or ["data"]
        self.form = "buffer" if "buffer" in offered else offered[0]
        self.threads = config.get("threads")
        if self.threads:
            steady_allocator()
        shared = config.get("shared_memory")
        if shared:
            try:
                self.segment = attach(shared)
            except Exception:  # no shared memory here: raw buffers do
                self.segment = None
        caps = self.impl.capabilities
        # availability: a probe that raises (SystemExit too) or answers nonsense makes
        # the device unavailable with that said, as in process
        unavailable = {device: availability(self.impl, device) for device in caps.devices}
        return {"tool": self.impl.name, "config": {
            "protocol": wire.PROTOCOL, "arrays": self.form, "shared_memory": self.segment is not None,
            "capabilities": messages.capabilities_to_json(caps), "description": self.impl.description,
            "default_device": default_device(self.impl), "unavailable": unavailable,
        }}

    def answer_start(self, message: dict) -> dict:
        try:
            with restoring_global_state():
                return self.start(message)
        except ImplementationError as exc:  # a wrong declaration: the user's input, said as in process
            return {"success": False, "error": str(exc), "refused": True}
        except BaseException as exc:  # noqa: BLE001 -- a declaration that raises or exits on being read
            return {"success": False, "error": summarise(exc, "start")}

    def define(self, message: dict) -> dict:
        body = message.get("input") or {}
        for model in body.get("release") or ():
            self.models.pop(model, None)
            self.layouts.pop(model, None)
        spec = messages.network_from_json(body.get("network"))
        params = [tuple(pair) for pair in body.get("params") or ()]
        started = time.perf_counter_ns()
        prepared = prepare(self.impl, spec, params, dtype=body.get("dtype", "float64"), device=body.get("device"),
                           input_grad=bool(body.get("input_grad")))
        elapsed = time.perf_counter_ns() - started
        if self.threads:  # now that prepare has imported what the implementation uses
            pin_threads(int(self.threads), only_loaded=True)
        self.next_model += 1
        if _writes_where_told(prepared):  # the gradients' shapes, for its step(batch, out=...)
            shapes = [((n_out, n_in), (n_out,)) for n_in, n_out in zip(spec.sizes, spec.sizes[1:])]
            self.layouts[self.next_model] = (shapes, np.dtype(body.get("dtype", "float64")))
        self.models[self.next_model] = (prepared, params)
        return {"success": True, "output": {"model": self.next_model}, "timings": [{"name": "prepare", "nanoseconds": elapsed}]}

    def evaluate(self, message: dict) -> dict:
        body = message.get("input") or {}
        function = message.get("function")
        if body.get("model") not in self.models:
            return {"success": False, "error": f"no model {body.get('model')!r} (prepare it with define)"}
        prepared, params = self.models[body["model"]]
        if body.get("params") is not None:
            params = [tuple(pair) for pair in body["params"]]
            self.models[body["model"]] = (prepared, params)
            prepared.set_params(params)
        x, y = body.get("x"), body.get("y")
        native = prepared.batch(x, y)
        if function == "step":
            out = self.gradients_in_place(prepared, body["model"], message)
            started = time.perf_counter_ns()
            out = prepared.step(native) if out is None else prepared.step(native, out=out)
            prepared.synchronize()
            elapsed = time.perf_counter_ns() - started
            result = prepared.to_numpy(out)
            if not isinstance(result, StepResult):
                raise TypeError(f"to_numpy returned {type(result).__name__}, expected StepResult")
            output = messages.step_to_json(result)
            if body.get("return_inputs"):
                output["inputs"] = {"params": [list(pair) for pair in params], "x": x, "y": y}
            return {"success": True, "output": output, "timings": [{"name": "evaluate", "nanoseconds": elapsed}]}
        if function == "forward":
            out = prepared.forward(native)
            if isinstance(out, (tuple, list, StepResult)):
                out = prepared.to_numpy(out).loss
            return {"success": True, "output": {"loss": as_numpy(out)}}
        if function == "time":
            samples = prepared.timed_steps(native, min_runs=int(body.get("min_runs", 1)),
                                          min_seconds=float(body.get("min_seconds", 0.0)))
            timings = [{"name": "evaluate", "nanoseconds": int(s * 1e9)} for s in samples]
            return {"success": True, "output": None, "timings": timings}
        return {"success": False, "error": f"unknown function {function!r}: expected step, forward or time"}

    def gradients_in_place(self, prepared, model: int, message: dict):
        """``[(dW, db), ...]``: views of the region the harness granted this answer, for
        a prepared step that writes its gradients where it is told (``step_accepts_out``),
        so they leave the worker without a copy; ``None`` where that cannot be."""
        self.in_place = None
        start, end = message.get("output_offset"), message.get("output_end")
        if (self.segment is None or not isinstance(start, int) or not isinstance(end, int) or start < 0
                or model not in self.layouts):
            return None
        key = (model, start, end, self.segment)
        if self._views is not None and self._views[0] == key:  # the same grant as the last step's: the same views
            views, self.in_place = self._views[1], self._views[2]
            return views
        shapes, dtype = self.layouts[model]
        views, offset, end = [], start, min(end, self.segment.size)
        for pair in shapes:
            arrays = []
            for shape in pair:
                offset = -(-offset // wire.ALIGN) * wire.ALIGN
                count = int(np.prod(shape))
                if offset + count * dtype.itemsize > end:
                    return None
                arrays.append(np.frombuffer(self.segment.buf, dtype, count, offset).reshape(shape))
                offset += count * dtype.itemsize
            views.append(tuple(arrays))
        # the views by identity, so that the answer names them by offset without looking at their addresses
        known = {id(a): (a, a_offset) for a, a_offset in _offsets(views, start)}
        self.in_place = (start, offset, known)
        self._views = (key, views, self.in_place)
        return views

    def answer(self, message: dict) -> dict:
        kind = message.get("kind")
        phase = "prepare" if kind == "define" else str(message.get("function", kind))
        try:
            # what the plug-in does to NumPy's error handling, warnings, the environment,
            # the directory... is put back after each call, as in process
            with restoring_global_state():
                if kind == "define":
                    return self.define(message)
                if kind == "evaluate":
                    return self.evaluate(message)
        except BaseException as exc:  # noqa: BLE001 -- SystemExit too: the plug-in's error, reported
            return {"success": False, "error": summarise(exc, phase)}
        return {}  # any other kind: the id alone, as GradBench asks

    def encode(self, answer: dict, message: dict):
        try:
            return self._encode(answer, message)
        except wire.ProtocolError as exc:  # e.g. a loss given as text: the plug-in's error, not the worker's end
            phase = str(message.get("function", message.get("kind")))
            return self._encode({"id": answer.get("id"), "success": False,
                                 "error": f"{phase} returned what the protocol cannot carry: {exc}"}, message)

    def _encode(self, answer: dict, message: dict):
        start, end = message.get("output_offset"), message.get("output_end")
        in_place, self.in_place = self.in_place, None
        if self.segment is not None and isinstance(start, int) and isinstance(end, int):
            # what the step wrote in place stays there; the rest is copied after it
            return wire.encode(answer, self.form, segment=self.segment.buf, offset=in_place[1] if in_place else start,
                               end=min(end, self.segment.size), in_place=in_place[:2] if in_place else None,
                               known=in_place[2] if in_place else None)
        return wire.encode(answer, self.form)


def _offsets(views, start: int):
    """``(array, offset)`` of each view ``gradients_in_place`` made, laid out from ``start``."""
    offset = start
    for pair in views:
        for a in pair:
            offset = -(-offset // wire.ALIGN) * wire.ALIGN
            yield a, offset
            offset += a.nbytes


def attach(described):
    if not isinstance(described, dict):
        raise wire.ProtocolError(f"shared_memory: expected an object with name and size, got {described!r:.80}")
    return segments.attach(str(described.get("name")), int(described.get("size") or 0))


def serve(target: str) -> int:
    proto_in, proto_out = protect_channels()
    try:
        impl, load_error, refused = (registry.resolve(target) if ":" in target else registry.load_one(target)), None, False
    except registry.BrokenOnImport as exc:  # the plug-in is broken: its ERROR
        impl, load_error, refused = None, str(exc), False
    except ImplementationError as exc:
        # module:attr is what the user typed: a wrong name or declaration is their input,
        # said as in process; a registered plug-in that will not load is that plug-in's ERROR
        impl, load_error, refused = None, str(exc), ":" in target
    except BaseException as exc:  # noqa: BLE001 -- an import that raises or exits is reported, not obeyed
        impl, load_error, refused = None, summarise(exc, "loading the implementation"), False
    if isinstance(impl, WorkerCommand):  # the program takes this process over, protocol and all
        os.dup2(proto_in.fileno(), 0)
        os.dup2(proto_out.fileno(), 1)
        try:
            os.execvp(impl.argv[0], impl.argv)
        except OSError as exc:
            impl, load_error = None, f"cannot run {impl.argv[0]!r}: {exc.strerror or exc}"
    server = Server(impl)
    while True:
        try:
            raw = wire.read_raw(proto_in)
            if raw is None:  # end of input: the session is over
                return 0
            message, descriptors, buffers = raw
            if "shared_memory" in message and server.segment is not None:  # the harness grew it
                server._views = None
                with contextlib.suppress(BufferError):  # a plug-in keeps views of it: it stays mapped
                    server.segment.close()
                server.segment = attach(message["shared_memory"])
            message = wire.decode(message, descriptors, buffers, limit=1 << 40,
                                  segment=server.segment.buf if server.segment else None)
        except wire.ProtocolError as exc:
            print(f"python_worker: {exc}", file=sys.stderr)
            return 2
        if message.get("kind") == "start":
            if load_error:
                answer = {"success": False, "error": load_error, **({"refused": True} if refused else {})}
            else:
                answer = server.answer_start(message)
        else:
            answer = server.answer(message)
        line, buffers = server.encode({"id": message.get("id"), **answer}, message)
        wire.write_message(proto_out, line, buffers)
        del answer, line, buffers  # no views of the segment held here past the answer
        if load_error:
            return 1


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m harness.workers.python_worker NAME|module:attr", file=sys.stderr)
        return 2
    return serve(args[0])


if __name__ == "__main__":
    sys.exit(main())
