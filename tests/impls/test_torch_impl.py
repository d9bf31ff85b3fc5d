"""The torch built-in (eager autograd): passes the battery in both dtypes, says why it
is unavailable, and converts, steps and replaces parameters as the protocol asks."""

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.reference import loss_and_grads
from harness.core.registry import implementations
from harness.core.spec import NetworkSpec
from harness.impls.torch_impl import TorchImplementation, torch_unavailable_reason
from tests.impls.battery import assert_passes, battery

SPEC = NetworkSpec((5, 4, 3), ("tanh", "identity"), "cross_entropy")


@pytest.mark.parametrize("case", battery(["float64", "float32"]))
def test_torch_passes_the_battery(case):
    pytest.importorskip("torch")
    assert_passes("torch", case)


def test_torch_implementations_say_why_they_are_unavailable():
    try:
        import torch
    except ImportError:
        torch = None
    for name in ("torch", "torch-compile"):
        reason = implementations()[name].unavailable_reason()
        if torch is None:
            assert reason == "torch is not installed"
        else:
            assert reason is None
    cuda = implementations()["torch"].unavailable_reason("cuda")
    if torch is None:
        assert cuda == "torch is not installed"
    elif not torch.cuda.is_available():
        assert cuda == "no CUDA device"
    else:
        assert cuda is None


def test_without_torch_the_reason_is_that_torch_is_not_installed(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    assert torch_unavailable_reason("cpu") == "torch is not installed"
    assert TorchImplementation().unavailable_reason() == "torch is not installed"


def test_a_step_converts_in_and_out_and_set_params_replaces_the_values():
    torch = pytest.importorskip("torch")
    case, other = make_case(SPEC, 3, seed=1), make_case(SPEC, 3, seed=2)
    prepared = TorchImplementation().prepare(SPEC, case.params, dtype="float32", input_grad=True)
    batch = prepared.batch(case.x, case.y)
    assert batch[0].dtype == torch.float32 and batch[1].dtype == torch.long
    result = prepared.to_numpy(prepared.step(batch))
    assert result.grads[0][0].dtype == np.float32 and result.dx.shape == case.x.shape
    assert float(prepared.forward(batch)) == pytest.approx(float(result.loss), rel=1e-6)
    prepared.set_params(other.params)
    moved = prepared.to_numpy(prepared.step(batch))
    _, want = loss_and_grads(SPEC, other.params, case.x, case.y)
    np.testing.assert_allclose(moved.grads[0][0], want[0][0], rtol=1e-4, atol=1e-6)
