"""The Python worker: serves every form of plug-in, keeps the protocol out of the
plug-in's reach (its prints, its stdin), answers what it cannot do with the reason,
and hands itself over to a registered worker program."""

import sys
import textwrap

import numpy as np
import pytest

from harness import run_checks
from harness.core.cases import make_case
from harness.core.out_of_process import WorkerCommand
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyImplementation, NumpyPrepared
from harness.workers import messages, wire
from harness.workers.process import WorkerProcess
from harness.workers.python_worker import Server
from harness.workers.remote import PYTHON_WORKER, WorkerImplementation
from harness.workers.segment import Arena

CASE = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity")), 3, "float64", 0)
# A registered worker program, as a package would declare one: here another Python worker.
ANOTHER_WORKER = WorkerCommand([sys.executable, "-m", PYTHON_WORKER, "numpy"])


def served(target: str) -> WorkerProcess:
    return WorkerProcess([sys.executable, "-m", PYTHON_WORKER, target])


def ask(worker: WorkerProcess, message: dict) -> dict:
    line, buffers = wire.encode(message)
    return worker.request(line, buffers, timeout=60, phase=message.get("kind", "?"), limit=1 << 20)


def checks_of(target: str):
    impl = WorkerImplementation.python(target)
    try:
        return run_checks(impl, CASE), impl.name
    finally:
        impl.close()


@pytest.mark.parametrize("target", [
    "numpy",  # a registered name
    "tests.conformance_impls:correct",  # a function
    "harness.impls.numpy_impl:NumpyImplementation",  # a class
    "backprop_harness_example.mlp:ExampleImplementation",  # a third party's class
])
def test_every_form_of_plug_in_is_served(target):
    results, _ = checks_of(target)
    assert results and all(r.ok for r in results), [r.describe() for r in results if not r.ok]


def test_what_the_plug_in_prints_or_reads_never_touches_the_protocol(tmp_path, monkeypatch):
    (tmp_path / "chatty.py").write_text(textwrap.dedent("""
        import os, sys
        from harness.core.reference import loss_and_grads

        def backprop(spec, params, x, y):
            print('{"id": 999, "success": true}')  # looks like an answer
            os.write(1, b"straight to file descriptor 1\\n")
            assert sys.stdin.read() == ""  # its stdin is empty, not the harness's requests
            return loss_and_grads(spec, params, x, y)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    results, _ = checks_of("chatty:backprop")
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]


def test_what_it_cannot_do_is_answered_with_the_reason():
    worker = served("numpy")
    try:
        assert ask(worker, {"id": 1, "kind": "start", "config": {"arrays": ["data"]}})["tool"] == "numpy"
        assert ask(worker, {"id": 2, "kind": "analysis", "of": 1, "valid": True}) == {"id": 2}  # as GradBench asks
        answer = ask(worker, {"id": 3, "kind": "evaluate", "module": "mlp", "function": "step", "input": {"model": 5}})
        assert answer == {"id": 3, "success": False, "error": "no model 5 (prepare it with define)"}
        answer = ask(worker, {"id": 4, "kind": "define", "module": "mlp", "input": {"network": {"sizes": [2]}}})
        assert answer["success"] is False and "network" in answer["error"]
        model = ask(worker, {"id": 5, "kind": "define", "module": "mlp", "input": {
            "network": {"sizes": [4, 3, 2], "activations": ["tanh", "identity"], "loss": "cross_entropy"},
            "dtype": "float64", "params": [list(p) for p in CASE.params]}})["output"]["model"]
        answer = ask(worker, {"id": 6, "kind": "evaluate", "module": "mlp", "function": "hessian",
                              "input": {"model": model, "x": CASE.x, "y": CASE.y}})
        assert answer["error"] == "unknown function 'hessian': expected step, forward or time"
    finally:
        worker.close()


def test_a_name_that_cannot_be_loaded_is_refused_and_the_worker_ends():
    worker = served("no_such_module_xyz:f")
    answer = ask(worker, {"id": 1, "kind": "start"})
    assert answer["success"] is False and answer["refused"] is True  # bad input: the caller says so in one line
    assert answer["error"] == ("--impl 'no_such_module_xyz:f': cannot import module 'no_such_module_xyz': "
                               "ModuleNotFoundError: No module named 'no_such_module_xyz'")
    worker.proc.wait(10)
    assert worker.proc.returncode == 1
    worker.close()


def test_a_module_that_exits_on_import_is_the_plug_ins_error_not_refused():
    worker = served("tests.hostile_imports.sys_exit_0:backprop")
    answer = ask(worker, {"id": 1, "kind": "start"})
    assert answer["success"] is False and "refused" not in answer
    assert answer["error"].endswith("cannot import module 'tests.hostile_imports.sys_exit_0': SystemExit: 0")
    worker.proc.wait(10)
    worker.close()


def test_a_plug_in_raising_keyboard_interrupt_or_system_exit_is_an_error_not_an_exit(tmp_path, monkeypatch):
    (tmp_path / "leaves.py").write_text("def backprop(spec, params, x, y):\n    raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    results, _ = checks_of("leaves:backprop")
    assert results[0].message.startswith("step raised KeyboardInterrupt")
    assert {r.verdict.value for r in results} == {"ERROR", "SKIP"}  # every check ran and said so: no crash


def test_a_registered_worker_program_takes_the_process_over():
    results, name = checks_of("tests.workers.test_python_worker:ANOTHER_WORKER")
    assert name == "numpy"  # the program that answered, not the module that named it
    assert all(r.ok for r in results)


class _StepOverridden(NumpyPrepared):
    """Inherits ``step_accepts_out`` but its own ``step`` takes no ``out``."""

    def step(self, batch):
        return super().step(batch)


class _Overrides(NumpyImplementation):
    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return _StepOverridden(spec, params, dtype, input_grad)


@pytest.mark.parametrize("impl, in_place", [(NumpyImplementation(), True), (_Overrides(), False)])
def test_a_step_that_takes_out_writes_its_gradients_into_the_answers_shared_memory(impl, in_place):
    arena = Arena.create()
    try:
        server = Server(impl)
        server.segment = arena.current.shm
        model = server.answer({"kind": "define", "input": {"network": messages.network_to_json(CASE.spec),
                                                           "dtype": "float64", "params": [list(p) for p in CASE.params]}})
        granted = (1 << 16, 1 << 19)
        message = {"kind": "evaluate", "function": "step", "input": {"model": model["output"]["model"], "x": CASE.x, "y": CASE.y},
                   "output_offset": granted[0], "output_end": granted[1]}
        answer = server.answer(message)
        line, buffers = server.encode({"id": 1, **answer}, message)
        grads = answer["output"]["grads"]
        assert [np.shares_memory(g, np.frombuffer(arena.buffer, np.uint8)) for p in grads for g in p] == [in_place] * 4
        described = wire.parse_line(line)["output"]["grads"]
        offsets = [d["offset"] for pair in described for d in pair]
        assert buffers == [] and all(granted[0] <= o < granted[1] for o in offsets)
        received = wire.decode(wire.parse_line(line), [], None, limit=1 << 20, segment=arena.buffer)["output"]
        expected = NumpyImplementation().prepare(CASE.spec, CASE.params)
        expected = expected.to_numpy(expected.step(expected.batch(CASE.x, CASE.y)))
        for (dW, db), (eW, eb) in zip(received["grads"], expected.grads):
            np.testing.assert_array_equal(dW, eW)
            np.testing.assert_array_equal(db, eb)
        del answer, grads, received
    finally:
        arena.close()


def test_steps_given_the_same_region_reuse_its_views_and_each_answer_is_its_own_steps():
    arena = Arena.create()
    try:
        server = Server(NumpyImplementation())
        server.segment = arena.current.shm
        model = server.answer({"kind": "define", "input": {"network": messages.network_to_json(CASE.spec),
                                                           "dtype": "float64", "params": [list(p) for p in CASE.params]}})
        other = [(W * 2, b + 1) for W, b in CASE.params]
        seen = []
        for params, granted in ((CASE.params, 1 << 16), (other, 1 << 16), (CASE.params, 1 << 18)):
            message = {"kind": "evaluate", "function": "step", "output_offset": granted, "output_end": granted + (1 << 17),
                       "input": {"model": model["output"]["model"], "x": CASE.x, "y": CASE.y,
                                 "params": [list(p) for p in params]}}
            answer = server.answer(message)
            line, buffers = server.encode({"id": 1, **answer}, message)
            seen.append([id(g) for pair in answer["output"]["grads"] for g in pair])
            described = wire.parse_line(line)["output"]["grads"]
            assert buffers == [] and described[0][0]["offset"] == granted  # named where the step wrote it
            received = wire.decode(wire.parse_line(line), [], None, limit=1 << 20, segment=arena.buffer)["output"]
            expected = NumpyImplementation().prepare(CASE.spec, params)
            expected = expected.to_numpy(expected.step(expected.batch(CASE.x, CASE.y)))
            for (dW, db), (eW, eb) in zip(received["grads"], expected.grads):
                np.testing.assert_array_equal(dW, eW)
                np.testing.assert_array_equal(db, eb)
            del answer, received
        assert seen[0] == seen[1] and seen[2] != seen[0]  # the same region, the same views; another, new ones
    finally:
        server._views = server.in_place = None
        arena.close()
