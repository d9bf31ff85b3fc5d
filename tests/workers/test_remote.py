"""An implementation in a worker is judged as it would be in process: the same
verdicts and messages for the corpus of realistic bugs; a crash costs the call in
progress and the next prepare starts a new worker; what a worker declares or answers
is checked."""

import json
import os
import sys
import textwrap

import numpy as np
import pytest

from harness import run_checks
from harness.core.cases import make_case
from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.reference import loss_and_grads
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec
from harness.workers import remote, wire
from harness.workers.remote import WorkerImplementation, python_target
from tests import conformance_impls, corpus

CASE = make_case(NetworkSpec((4, 3, 2), ("relu", "identity")), 3, "float64", 0)
SAME = ["UpdatesParametersInPlace", "NormalisesInputsInPlace", "GradientsAccumulateAcrossCalls", "CachesForwardByShape",
        "ReturnsFloat32", "WeightGradTransposed", "SumInsteadOfMean", "InputGradientDividedByBatch", "SingleElementOff"]


@pytest.fixture
def numpy_worker():
    impl = WorkerImplementation.python("numpy")
    yield impl
    impl.close()


def test_the_worker_says_who_it_is_and_what_it_declares(numpy_worker):
    assert numpy_worker.name == "numpy"  # not started yet: the text that named it stands in
    numpy_worker.start()
    assert numpy_worker.name == "numpy" and "NumPy" in numpy_worker.description
    caps = numpy_worker.capabilities
    assert caps.dtypes == {"float32", "float64"} and caps.input_grad
    assert numpy_worker.default_device() == "cpu" and numpy_worker.unavailable_reason() is None
    assert "device 'cuda' is not among those it declares (cpu)" == numpy_worker.unavailable_reason("cuda")
    twin = numpy_worker.clone()
    assert twin.capabilities == caps and twin._worker is None  # a worker of its own, started when used
    twin.close()


@pytest.mark.parametrize("name", SAME)
def test_a_bug_gets_the_same_verdicts_and_messages_as_in_process(name):
    entry = next(e for e in corpus.BUGS if type(e.impl).__name__ == name)
    impl = WorkerImplementation.python(f"tests.corpus:{name}")
    try:
        case = entry.case()
        remote_results = [(r.check, r.verdict, r.message) for r in run_checks(impl, case)]
        # a fresh object, as the worker makes: the shared corpus one may carry state from other tests
        local = [(r.check, r.verdict, r.message) for r in run_checks(type(entry.impl)(), case)]
        assert remote_results == local
        assert any(v is Verdict.FAIL for _, v, _ in remote_results)
    finally:
        impl.close()


def test_without_its_inputs_sent_back_a_mutation_cannot_be_seen_and_the_check_skips_saying_so():
    impl = WorkerImplementation.python("tests.corpus:UpdatesParametersInPlace", return_inputs=False)
    try:
        result = next(r for r in run_checks(impl, CASE) if r.check == "inputs_not_mutated")
    finally:
        impl.close()
    assert result.verdict is Verdict.SKIP and "cannot be seen" in result.message


def test_a_crash_costs_the_call_and_the_next_prepare_starts_a_new_worker(tmp_path, monkeypatch):
    flag = tmp_path / "crashed-once"
    monkeypatch.setenv("CRASH_FLAG", str(flag))
    (tmp_path / "crash_once.py").write_text(textwrap.dedent("""
        import os
        from harness.core.reference import loss_and_grads

        def backprop(spec, params, x, y):
            if not os.path.exists(os.environ["CRASH_FLAG"]):
                open(os.environ["CRASH_FLAG"], "w").close()
                os._exit(9)
            return loss_and_grads(spec, params, x, y)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = WorkerImplementation.python("crash_once:backprop")
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        with pytest.raises(ImplementationGone) as info:
            prepared.step(prepared.batch(CASE.x, CASE.y))
        assert info.value.verdict is Verdict.CRASHED and "exit status 9" in str(info.value)
        with pytest.raises(ImplementationGone, match="the worker this model was prepared in is gone"):
            prepared.step(prepared.batch(CASE.x, CASE.y))
        results = run_checks(impl, CASE)  # a new worker, which does not crash
        assert all(r.ok for r in results)
    finally:
        impl.close()


def test_after_a_crash_the_remaining_checks_of_the_case_say_they_did_not_run():
    impl = WorkerImplementation.python("tests.hostile_impls:exits_0_in_step")
    try:
        results = run_checks(impl, CASE)
    finally:
        impl.close()
    assert results[0].verdict is Verdict.CRASHED and "exit status 0" in results[0].message
    assert all(r.verdict is Verdict.SKIP and r.message == "not run: outputs_are_finite CRASHED" for r in results[1:])


def test_set_params_rides_with_the_next_step_and_forward_and_timed_steps_work(numpy_worker):
    prepared = numpy_worker.prepare(CASE.spec, CASE.params)
    other = [(W * 2, b + 1) for W, b in CASE.params]
    prepared.set_params(other)
    batch = prepared.batch(CASE.x, CASE.y)
    result = prepared.to_numpy(prepared.step(batch))
    loss, grads = loss_and_grads(CASE.spec, other, CASE.x, CASE.y)
    np.testing.assert_allclose(result.grads[0][0], grads[0][0], rtol=1e-12)
    assert prepared.last_seconds is not None and prepared.last_seconds > 0
    np.testing.assert_allclose(prepared.forward(batch), loss, rtol=1e-12)
    samples = prepared.timed_steps(batch, min_runs=5, min_seconds=0.0)
    assert len(samples) >= 5 and all(s > 0 for s in samples)


def test_a_batch_stepped_on_again_and_again_travels_once_and_a_plug_in_changing_it_sees_it_whole_each_time():
    # bench's loop: one batch, many steps, inputs not sent back. The batch is copied
    # into shared memory by the first step only; a plug-in that centres it in place
    # changes its own copy, never what the next step is given, nor the caller's arrays.
    x, y = CASE.x.copy(), CASE.y.copy()
    impl = WorkerImplementation.python("tests.corpus:NormalisesInputsInPlace", shared_memory=True, return_inputs=False)
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        batch = prepared.batch(x, y)
        assert isinstance(batch, remote.KeptBatch)
        losses = [float(prepared.to_numpy(prepared.step(batch)).loss) for _ in range(3)]
        offsets = {json.loads(line)["input"]["x"]["offset"] for line in _lines_sent(impl, prepared, batch, 2)}
    finally:
        impl.close()
    centred = x - x.mean(axis=0)
    assert losses == [losses[0]] * 3 and losses[0] == pytest.approx(float(loss_and_grads(CASE.spec, CASE.params, centred, y)[0]), rel=1e-12)
    assert len(offsets) == 1  # named where the first step put it
    np.testing.assert_array_equal(x, CASE.x)  # the caller's batch untouched


def test_a_kept_batch_is_copied_again_into_a_restarted_workers_memory():
    impl = WorkerImplementation.python("numpy", return_inputs=False)
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        batch = prepared.batch(CASE.x, CASE.y)
        assert isinstance(batch, remote.KeptBatch)
        first = prepared.to_numpy(prepared.step(batch))
        impl.close()
        again = impl.prepare(CASE.spec, CASE.params)  # a new worker, a new segment
        second = again.to_numpy(again.step(batch))
    finally:
        impl.close()
    assert float(second.loss) == float(first.loss)
    np.testing.assert_array_equal(second.grads[0][0], first.grads[0][0])


def _lines_sent(impl, prepared, batch, steps: int) -> list[bytes]:
    """The request lines of ``steps`` more steps on ``batch``."""
    sent, request = [], impl._worker.request
    impl._worker.request = lambda line, buffers, **kw: (sent.append(line), request(line, buffers, **kw))[1]
    for _ in range(steps):
        prepared.step(batch)
    return sent


def test_a_plug_in_that_raises_is_an_error_in_its_own_words():
    impl = WorkerImplementation.python("tests.hostile_impls:raises")
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        with pytest.raises(RemoteError, match=r"^step raised RuntimeError: deliberately broken \(hostile_impls.py:\d+\)$"):
            prepared.step(prepared.batch(CASE.x, CASE.y))
    finally:
        impl.close()


def fake_worker(tmp_path, answers: str) -> WorkerImplementation:
    """A worker program that answers ``start`` as ``answers`` says, and ``define`` wrongly."""
    script = tmp_path / "fake_worker.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        for line in sys.stdin:
            m = json.loads(line)
            {answers}
            sys.stdout.flush()
    """))
    return WorkerImplementation([sys.executable, str(script)], timeout=10)


@pytest.mark.parametrize(("answers", "words"), [
    ('print(json.dumps({"id": m["id"] + 1}))', "an answer with id 2 to the request with id 1"),
    ('print(json.dumps({"id": m["id"], "config": {"protocol": "other/2"}}))', "the worker speaks 'other/2'"),
    ('print(json.dumps({"id": m["id"], "config": {"arrays": "pickle"}}))', "arrays 'pickle' is not one of"),
    ('print(json.dumps({"id": m["id"], "config": {"capabilities": {"dtypes": 64}}}))', "capabilities.dtypes = 64"),
])
def test_a_worker_that_answers_start_wrongly_is_refused_saying_why(tmp_path, answers, words):
    impl = fake_worker(tmp_path, answers)
    with pytest.raises(wire.ProtocolError) as info:
        impl.start()
    assert words in str(info.value)
    impl.close()


def test_a_worker_that_names_no_model_is_refused(tmp_path):
    impl = fake_worker(tmp_path, 'print(json.dumps({"id": m["id"], "success": True, "output": {"model": "one"}}))')
    with pytest.raises(wire.ProtocolError, match="names no model"):
        impl.prepare(CASE.spec, CASE.params)
    impl.close()


def test_an_importable_object_is_named_by_module_and_attribute_and_a_local_one_says_why():
    assert python_target("numpy") == "numpy"
    assert python_target(conformance_impls.correct) == "tests.conformance_impls:correct"
    assert python_target(conformance_impls.Unavailable) == "tests.conformance_impls:Unavailable"

    def local(spec, params, x, y):
        raise AssertionError

    with pytest.raises(ValueError, match="define it at module level"):
        python_target(local)
    with pytest.raises(ValueError, match="define it at module level"):
        python_target(corpus.BUGS[0].impl)  # an instance kept only in a list


def test_a_command_is_split_like_a_shell_line_and_an_empty_one_says_what_is_expected():
    impl = WorkerImplementation.command("node 'my dir/worker.js' --fast")
    assert impl.argv == ["node", "my dir/worker.js", "--fast"] and impl.label == "cmd:node 'my dir/worker.js' --fast"
    with pytest.raises(ValueError, match="cmd: needs a program"):
        WorkerImplementation.command("  ")
    with pytest.raises(ValueError, match="No closing quotation"):
        WorkerImplementation.command("node 'unclosed")
    with pytest.raises(ValueError, match="timeout=0"):
        WorkerImplementation(["x"], timeout=0)


def test_a_workers_environment_finds_what_the_harness_finds_and_limits_its_threads():
    env = remote.python_environment(threads=1)
    assert os.getcwd() in env["PYTHONPATH"].split(os.pathsep)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


def _shares_the_segment(impl, array) -> bool:
    return np.shares_memory(array, np.frombuffer(impl._arena.buffer, np.uint8))


@pytest.mark.parametrize("judged", [True, False])
def test_judged_answers_are_copied_out_of_shared_memory_and_the_others_lent(judged):
    # The worker can write to the shared segment at any time: what a judge reads must be
    # the harness's own copy; bench and train (not judged) take views, and no copy.
    impl = WorkerImplementation.python("numpy", return_inputs=judged)
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        result = prepared.step(prepared.batch(CASE.x, CASE.y))
        assert impl._arena is not None
        assert [_shares_the_segment(impl, g) for pair in result.grads for g in pair] == [not judged] * 4
        loss, grads = loss_and_grads(CASE.spec, CASE.params, CASE.x, CASE.y)
        np.testing.assert_allclose(result.grads[0][0], grads[0][0], rtol=1e-12)
    finally:
        impl.close()


SCRIBBLER = """
import threading
import time

import numpy as np

from harness.impls.numpy_impl import NumpyImplementation, NumpyPrepared


class ScribblingPrepared(NumpyPrepared):
    # Writes its gradients where it is told (shared memory), answers, then overwrites them.
    def step(self, batch, out=None):
        loss, grads, dx = super().step(batch, out=out)
        written = [a for pair in grads for a in pair]

        def scribble():
            time.sleep(0.2)
            for a in written:
                a[...] = np.nan

        threading.Thread(target=scribble, daemon=True).start()
        return loss, grads, dx


class Scribbler(NumpyImplementation):
    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return ScribblingPrepared(spec, params, dtype, input_grad)
"""


@pytest.mark.parametrize("judged", [True, False])
def test_a_worker_writing_into_shared_memory_after_answering_cannot_change_what_is_judged(tmp_path, monkeypatch, judged):
    import time

    (tmp_path / "scribbler.py").write_text(SCRIBBLER)
    monkeypatch.syspath_prepend(str(tmp_path))
    impl = WorkerImplementation.python("scribbler:Scribbler", return_inputs=judged)
    try:
        prepared = impl.prepare(CASE.spec, CASE.params)
        result = prepared.step(prepared.batch(CASE.x, CASE.y))
        time.sleep(0.6)  # the worker has scribbled by now
        finite = [bool(np.isfinite(g).all()) for pair in result.grads for g in pair]
        # judged: the harness's own copy, untouched; lent (bench, train, which use an
        # answer at once and judge none): the views show what the worker wrote since
        assert finite == [judged] * 4
    finally:
        impl.close()
