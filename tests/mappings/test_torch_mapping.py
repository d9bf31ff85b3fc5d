"""PyTorch functions, custom autograd.Functions and modules as mappings: autograd's
backward, forward-mode JVP where offered, double backward for the second order."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.checks.mapping_runner import check_mapping  # noqa: E402
from harness.core.mapping import Input, NotOffered  # noqa: E402
from harness.core.results import Verdict  # noqa: E402
from harness.mappings.torch_mapping import torch_mapping  # noqa: E402


def failing(results):
    return {r.check for r in results if not r.ok}


def test_torch_functions_and_their_conventions_at_kinks_pass():
    for fn in (torch.relu, lambda x: torch.clamp(x, min=0), torch.nn.functional.gelu):  # relu'(0) = 0, 1
        m = torch_mapping(fn, inputs=[Input((3, 5), kinks=(0.0,))], name="f")
        results = check_mapping(m)
        assert not failing(results), [r.describe() for r in results if not r.ok]


def test_a_module_s_parameters_are_inputs_named_as_in_the_module():
    torch.manual_seed(0)
    m = torch_mapping(torch.nn.Linear(4, 3), inputs=[Input((5, 4), name="x")])
    assert [s.name for s in m.inputs] == ["x", "weight", "bias"] and m.name == "Linear"
    results = check_mapping(m, dtype="float32")
    assert not failing(results)
    assert {r.check for r in results if r.verdict is Verdict.PASS} >= {"vjp_matches_oracle", "jvp_matches_oracle",
                                                                        "jvp_vjp_transpose"}


def test_integer_inputs_get_no_gradient():
    m = torch_mapping(lambda w, i: torch.nn.functional.embedding(i, w), inputs=[Input((5, 3)), Input((9,), kind="int", high=3)])
    assert not failing(check_mapping(m, dtype="float64"))
    assert m.vjp((np.ones((5, 3)), np.array([0, 2])), (np.ones((2, 3)),))[1] is None


class WrongBackward(torch.autograd.Function):
    """tanh whose backward uses 1 - x^2 (the input) instead of 1 - tanh(x)^2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (1 - x * x)


def test_a_custom_function_with_a_wrong_backward_fails_and_its_missing_jvp_is_a_skip():
    m = torch_mapping(WrongBackward.apply, inputs=[Input((4, 3))], name="wrong tanh")
    results = check_mapping(m, dtype="float64")
    assert {"vjp_matches_oracle", "vjp_probes"} <= failing(results)
    jvp = [r for r in results if r.check == "jvp_matches_oracle"]
    assert all(r.verdict is Verdict.SKIP and "setup_context" in r.message for r in jvp)
    with pytest.raises(NotOffered):
        m.jvp((np.ones(3),), (np.ones(3),))


class DetachedSquare(torch.autograd.Function):
    """x^2 with a correct first backward that detaches x: its double backward is wrong."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x.detach() * g


def test_second_order_checks_double_backward():
    good = torch_mapping(lambda x: x * x, inputs=[Input((2, 3))], name="square")
    results = [r for r in check_mapping(good, dtype="float64", second_order=True) if r.check == "second_order"]
    assert any(r.verdict is Verdict.PASS for r in results), [r.describe() for r in results]
    assert all(r.ok for r in results) and [r.message for r in results if r.verdict is Verdict.SKIP] == [
        "not at large magnitudes: the float64 backward that the oracle differentiates loses digits in activation tails"]
    bad = torch_mapping(DetachedSquare.apply, inputs=[Input((2, 3))], name="detached square")
    results = check_mapping(bad, dtype="float64", second_order=True)
    assert "second_order" in failing(results) and "vjp_matches_oracle" not in failing(results)


def test_a_function_with_a_0_d_output_takes_a_0_d_cotangent():
    # np.ascontiguousarray makes a 0-d cotangent (1,), which autograd refused for a 0-d loss
    m = torch_mapping(lambda x: (x * x).sum(), inputs=[Input((3, 2))], name="sum of squares")
    x = np.arange(6.0).reshape(3, 2)
    (dx,) = m.vjp((x,), (np.asarray(0.5),))
    assert np.array_equal(dx, x)
    assert not failing(check_mapping(m, dtype="float64"))
