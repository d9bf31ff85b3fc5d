"""Every built-in passes every check of the default battery, in every dtype it declares."""

import sys

import numpy as np
import pytest

from harness import run_checks
from harness.checks import planner
from harness.core.cases import make_case
from harness.core.registry import implementations
from harness.core.results import Verdict
from harness.core.spec import SEED_SPEC, NetworkSpec


def _assert_passes(name, case):
    results = run_checks(name, case)
    assert results and results[0].check != "applicable", results[0].message
    for r in results:
        assert r.verdict in (Verdict.PASS, Verdict.SKIP), r.describe()


def _battery(dtypes, *, seed_size=True):
    return [
        pytest.param(c, id=f"{c.describe()}")
        for d in dtypes
        for c in planner.battery(d)
        if seed_size or c.spec != SEED_SPEC
    ]


@pytest.mark.parametrize("case", _battery(["float64", "float32"]))
def test_numpy_passes_the_battery(case):
    _assert_passes("numpy", case)


@pytest.mark.parametrize("case", _battery(["float64"], seed_size=False))
def test_pure_python_passes_the_battery(case):
    _assert_passes("pure-python", case)


@pytest.mark.parametrize("case", _battery(["float64", "float32"]))
def test_torch_passes_the_battery(case):
    pytest.importorskip("torch")
    _assert_passes("torch", case)


# torch.compile spends seconds per new shape on the CPU, so it gets a few cases.
COMPILE_CASES = [
    make_case(NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), 4, "float64", 0, on_kinks=True),
    make_case(NetworkSpec((6, 5, 3), ("tanh", "sigmoid"), "mse"), 4, "float32", 0),
]


@pytest.mark.parametrize("case", COMPILE_CASES, ids=lambda c: c.describe())
def test_torch_compile_passes(case):
    pytest.importorskip("torch")
    _assert_passes("torch-compile", case)


def test_torch_compile_caches_per_shape_and_survives_many_shapes():
    pytest.importorskip("torch")
    from harness.impls import torch_compile_impl

    impl = implementations()["torch-compile"]
    spec = NetworkSpec((3, 2), ("identity",), "mse")
    base = make_case(spec, 1, "float32", 0)
    prepared = impl.prepare(spec, base.params, dtype="float32", device="cpu")
    # more distinct shapes than dynamo's recompile limit of 8: each gets its own function
    for batch in range(1, 11):
        case = make_case(spec, batch, "float32", batch)
        b = prepared.batch(case.x, case.y)
        n = len(torch_compile_impl._COMPILED)
        result = prepared.to_numpy(prepared.step(b))
        assert len(torch_compile_impl._COMPILED) == n  # step itself never compiles
        assert result.grads[0][0].shape == (2, 3)
    keys = [k for k in torch_compile_impl._COMPILED if k[0] == spec]
    assert len(keys) == 10


def test_torch_compile_cuda_path_gives_the_whole_graph_steps_gradients_on_the_cpu():
    # The CUDA path (compiled forward, loss.backward(), CUDA graphs' outputs cloned)
    # cannot run here without a GPU; its logic can, on the CPU's compiled forward.
    pytest.importorskip("torch")
    case = make_case(NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), 4, "float64", 1)
    prepared = implementations()["torch-compile"].prepare(case.spec, case.params, dtype="float64", device="cpu")
    prepared.input_grad = True
    batch = prepared.batch(case.x, case.y)
    whole = prepared.to_numpy(prepared.step(batch))
    split = prepared.to_numpy(prepared._step_with_backward(batch))
    assert np.isclose(whole.loss, split.loss, rtol=1e-12)
    for (dW, db), (sW, sb) in zip(whole.grads, split.grads):
        np.testing.assert_allclose(sW, dW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(sb, db, rtol=1e-12, atol=1e-15)
    assert whole.dx is not None
    np.testing.assert_allclose(split.dx, whole.dx, rtol=1e-12, atol=1e-15)


def test_pure_python_step_calls_no_numpy():
    case = make_case(NetworkSpec((5, 4, 3), ("sigmoid", "identity"), "cross_entropy"), 3)
    prepared = implementations()["pure-python"].prepare(case.spec, case.params)
    batch = prepared.batch(case.x, case.y)
    seen = set()

    def profile(frame, event, arg):
        if event == "c_call":
            seen.add(getattr(arg, "__module__", None) or "")
        elif event == "call":
            seen.add(frame.f_globals.get("__name__", ""))

    sys.setprofile(profile)
    try:
        loss, grads, dx = prepared.step(batch)
    finally:
        sys.setprofile(None)
    assert not [m for m in seen if m.startswith("numpy")], seen
    assert isinstance(loss, float) and isinstance(grads[0][0], list) and isinstance(grads[0][0][0], list)
