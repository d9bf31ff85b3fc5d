"""The torch-compile built-in: passes its few cases, compiles once per shape and never
inside the step, and its CUDA path's logic gives the CPU graph's gradients."""

import numpy as np
import pytest

from harness.core import reference
from harness.core.cases import make_case
from harness.core.registry import implementations
from harness.core.spec import NetworkSpec
from tests.impls.battery import assert_passes

# torch.compile spends seconds per new shape on the CPU, so it gets a few cases.
COMPILE_CASES = [
    make_case(NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy"), 4, "float64", 0, on_kinks=True),
    make_case(NetworkSpec((6, 5, 3), ("tanh", "sigmoid"), "mse"), 4, "float32", 0),
]


@pytest.mark.parametrize("case", COMPILE_CASES, ids=lambda c: c.describe())
def test_torch_compile_passes(case):
    pytest.importorskip("torch")
    assert_passes("torch-compile", case)


def test_torch_compile_compiles_once_per_network_on_the_cpu_whatever_the_batch():
    pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    from harness.impls import torch_compile_impl

    impl = implementations()["torch-compile"]
    spec = NetworkSpec((3, 2), ("identity",), "mse")
    base = make_case(spec, 1, "float32", 0)
    prepared = impl.prepare(spec, base.params, dtype="float32", device="cpu")
    graphs = counters["stats"]["unique_graphs"]
    # batches of 1 (which mark_dynamic would specialise) to 10: one compiled step serves all
    for batch in range(1, 11):
        case = make_case(spec, batch, "float32", batch)
        b = prepared.batch(case.x, case.y)
        n = len(torch_compile_impl._COMPILED)
        result = prepared.to_numpy(prepared.step(b))
        assert len(torch_compile_impl._COMPILED) == n  # step itself never compiles
        assert result.grads[0][0].shape == (2, 3)
        expected = reference.loss_and_grads(spec, base.params, case.x, case.y)[1]
        np.testing.assert_allclose(result.grads[0][0], expected[0][0], rtol=1e-5, atol=1e-6)
    assert len([k for k in torch_compile_impl._COMPILED if k[0] == spec]) == 1
    assert counters["stats"]["unique_graphs"] - graphs == 1  # dynamo traced one graph, not ten


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


def test_it_declares_that_it_compiles_per_shape_and_is_unavailable_without_torch(monkeypatch):
    import importlib.util

    impl = implementations()["torch-compile"]
    assert impl.capabilities.compiles_per_shape
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert impl.unavailable_reason() == "torch is not installed"


def test_the_cpus_flags_pick_the_vector_isa_that_inductors_test_builds_pick():
    # The step is compiled with cpp.vec_isa_ok (no test builds: a cold start's quarter);
    # on this machine that must choose what the builds choose, so the kernels are the same.
    pytest.importorskip("torch")
    from torch._inductor import config, cpu_vec_isa

    cpu_vec_isa.valid_vec_isa_list.cache_clear()
    built = cpu_vec_isa.pick_vec_isa()
    with config.patch({"cpp.vec_isa_ok": True}):
        cpu_vec_isa.valid_vec_isa_list.cache_clear()
        from_flags = cpu_vec_isa.pick_vec_isa()
    cpu_vec_isa.valid_vec_isa_list.cache_clear()
    assert str(from_flags) == str(built) and from_flags.build_arch_flags() == built.build_arch_flags()
