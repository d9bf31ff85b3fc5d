"""What the messages carry: capabilities and steps round-trip, a bad declaration is
refused by field, and every line of a real session -- the Python worker's and the C
worker's -- is valid under the protocol's JSON Schema."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.protocol import Capabilities, StepResult
from harness.core.spec import NetworkSpec
from harness.workers import messages, wire
from harness.workers.remote import WorkerImplementation

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "harness" / "workers" / "protocol.schema.json"


def test_capabilities_round_trip_and_absent_fields_keep_their_defaults():
    caps = Capabilities(activations={"relu"}, dtypes={"float32", "float64"}, input_grad=True, nondeterminism=1e-12,
                        compiles_per_shape=True, max_multiply_adds=10)
    assert messages.capabilities_from_json(json.loads(json.dumps(messages.capabilities_to_json(caps)))) == caps
    assert messages.capabilities_from_json({"dtypes": ["float32"]}) == Capabilities(dtypes={"float32"})
    assert messages.capabilities_from_json(None) == Capabilities()


@pytest.mark.parametrize(("declared", "words"), [
    ({"dtypes": "float64"}, "capabilities.dtypes = 'float64': expected a list of strings"),
    ({"input_grad": 1}, "capabilities.input_grad = 1: expected true or false"),
    ({"nondeterminism": 2}, "expected a number in [0, 1)"),
    ({"max_multiply_adds": 0}, "expected an integer >= 1 or null"),
    ({"speed": "fast"}, "unknown field(s) speed"),
    ([1], "expected an object"),
])
def test_a_bad_declaration_is_refused_naming_the_field(declared, words):
    with pytest.raises(wire.ProtocolError) as info:
        messages.capabilities_from_json(declared)
    assert words in str(info.value)


def test_a_step_round_trips_with_its_dtypes():
    result = StepResult(np.float32(0.5), [(np.ones((2, 3), np.float32), np.zeros(2, np.float32))], np.ones((4, 3)))
    line, buffers = wire.encode(messages.step_to_json(result))
    import io

    back = messages.step_from_json(wire.read_message(io.BufferedReader(io.BytesIO(line + b"".join(map(bytes, buffers))))))
    assert back.loss.dtype == np.float32 and back.grads[0][0].dtype == np.float32 and back.dx.shape == (4, 3)
    assert messages.step_from_json({"loss": 1.5, "grads": []}).loss == 1.5  # a plain number is read as float64


@pytest.mark.parametrize(("output", "words"), [
    ({"grads": []}, "no 'loss'"),
    ({"loss": 1.0, "grads": [[1, 2, 3]]}, "list of [dW, db] pairs"),
    ({"loss": "low", "grads": []}, "loss: expected an array"),
    ("done", "must be an object"),
])
def test_a_malformed_step_answer_is_a_protocol_error(output, words):
    with pytest.raises(wire.ProtocolError, match=None) as info:
        messages.step_from_json(output)
    assert words in str(info.value)


def test_networks_round_trip_and_a_bad_one_says_why():
    spec = NetworkSpec((4, 3, 2), ("relu", "identity"), "mse")
    assert messages.network_from_json(messages.network_to_json(spec)) == spec
    with pytest.raises(wire.ProtocolError, match="softplus"):
        messages.network_from_json({"sizes": [4, 2], "activations": ["softplus"], "loss": "mse"})


def recorded_session(impl) -> list[dict]:
    """Every JSON line of a short session: start, define, a checked step, a timed one."""
    lines, parse = [], wire.parse_line

    def record(line):
        lines.append(json.loads(line))
        return parse(line)

    sent = wire.encode

    def record_sent(*args, **kwargs):
        line, buffers = sent(*args, **kwargs)
        lines.append(json.loads(line))
        return line, buffers

    case = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), "mse"), 3, "float32", 0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(wire, "parse_line", record)
        mp.setattr(wire, "encode", record_sent)
        prepared = impl.prepare(case.spec, case.params, dtype="float32", input_grad=True)
        prepared.step(prepared.batch(case.x.copy(), case.y.copy()))
        prepared.timed_steps((case.x, case.y), min_runs=2, min_seconds=0.0)
        prepared.forward((case.x, case.y))
    impl.close()
    return lines


def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared-memory", "buffers"])
def test_every_line_of_a_python_workers_session_is_valid_under_the_schema(shared_memory):
    check = validator()
    lines = recorded_session(WorkerImplementation.python("numpy", shared_memory=shared_memory))
    kinds = {line.get("kind") for line in lines}
    assert {"start", "define", "evaluate"} <= kinds and len(lines) >= 10
    for line in lines:
        errors = [e.message for e in check.iter_errors(line)]
        assert not errors, (line, errors)


def test_every_line_of_the_c_workers_session_is_valid_under_the_schema(tmp_path):
    check = validator()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "mlp-worker"
    subprocess.run([cc, "-std=c99", "-O2", "-o", str(exe), str(ROOT / "workers/c/mlp_worker.c"), "-lm"], check=True)
    for line in recorded_session(WorkerImplementation([str(exe)])):
        errors = [e.message for e in check.iter_errors(line)]
        assert not errors, (line, errors)


def test_the_schema_refuses_what_the_harness_refuses():
    check = validator()
    assert not check.is_valid({"id": 1, "success": True, "output": {"loss": {"dtype": "|O", "shape": [], "data": [1]}}})
    assert not check.is_valid({"id": 1, "kind": "define", "module": "mlp", "input": {"network": {"sizes": [2]}}})
