"""The torch-compile built-in: passes its few cases, compiles once per network structure
(not per batch or layer size) and never inside the step, and its CUDA path's logic gives the CPU graph's gradients."""

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
    assert len([k for k in torch_compile_impl._COMPILED if k[0] == torch_compile_impl.network_structure(spec)]) == 1
    assert counters["stats"]["unique_graphs"] - graphs == 1  # dynamo traced one graph, not ten


def _steps_right(spec, batch, dtype="float64"):
    """Steps ``spec`` through torch-compile; asserts its gradients are the reference's."""
    case = make_case(spec, batch, dtype, 3)
    prepared = implementations()["torch-compile"].prepare(spec, case.params, dtype=dtype, device="cpu")
    result = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
    loss, grads = reference.loss_and_grads(spec, case.params, case.x, case.y)[:2]
    assert np.isclose(result.loss, loss, rtol=1e-10)
    for (dW, db), (eW, eb) in zip(result.grads, grads):
        assert dW.shape == eW.shape
        np.testing.assert_allclose(dW, eW, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(db, eb, rtol=1e-9, atol=1e-12)


def test_networks_of_one_structure_share_one_graph_and_each_gets_its_own_gradients():
    # The layer sizes are symbolic: a second network with the same operators but other
    # sizes runs the first one's graph (no new trace), and its gradients are its own.
    pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    _steps_right(NetworkSpec((5, 4, 3), ("sigmoid", "tanh"), "mse"), 4)
    assert counters["stats"]["unique_graphs"] - graphs == 1
    _steps_right(NetworkSpec((9, 7, 2), ("sigmoid", "tanh"), "mse"), 6)
    _steps_right(NetworkSpec((30, 20, 10), ("sigmoid", "tanh"), "mse"), 1)
    assert counters["stats"]["unique_graphs"] - graphs == 1


def test_a_network_whose_sizes_repeat_or_are_one_gets_a_graph_of_its_own_and_the_right_gradients():
    # Dynamo gives equal sizes one symbol and specialises a size of 1: a graph traced
    # for 4-3-3 or 4-3-1 would not serve 4-3-5 (guards), so the pattern is in the key.
    pytest.importorskip("torch")
    from harness.impls.torch_compile_impl import network_structure

    specs = [NetworkSpec(sizes, ("leaky_relu", "sigmoid"), "mse") for sizes in ((4, 3, 3), (4, 3, 1), (4, 3, 5))]
    assert len({network_structure(s) for s in specs}) == 3
    assert network_structure(NetworkSpec((8, 6, 6), ("leaky_relu", "sigmoid"), "mse")) == network_structure(specs[0])
    for spec in [*specs, NetworkSpec((8, 6, 6), ("leaky_relu", "sigmoid"), "mse")]:
        _steps_right(spec, 3)


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
