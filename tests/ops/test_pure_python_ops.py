"""The pure-Python provider offers the MLP's operators, each passing the mapping checks on
its record's samples (rank-3 inputs, ignored rows and label smoothing included), and it
computes leaky_relu with any slope; and the list operators the pure-Python MLP chains."""

import math

import numpy as np
import pytest

from harness import ops
from harness.core.cases import make_case
from harness.core.reference import loss_and_grads
from harness.core.spec import NetworkSpec
from harness.ops import pure_python_ops as pp
from harness.ops.numpy_activations import LeakyRelu as NumpyLeakyRelu
from tests.ops.checking import assert_passes

MLP_OPERATORS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "identity", "cross_entropy", "mse")


def test_the_pure_python_provider_offers_the_mlp_s_operators():
    assert set(ops.provider("pure-python").operators) == set(MLP_OPERATORS)


@pytest.mark.parametrize("name", MLP_OPERATORS)
def test_every_pure_python_operator_passes_on_its_samples(name):
    assert_passes(name, "pure-python")


def test_a_leaky_relu_slope_other_than_the_mlp_s_is_computed_as_numpy_computes_it():
    x, g = np.array([[-2.0, -0.5, 0.0, 1.5]]), np.array([[1.0, 2.0, 3.0, 4.0]])
    leaky = pp.PURE_PYTHON_OPERATORS["leaky_relu"]()
    np.testing.assert_array_equal(leaky.forward(x, negative_slope=0.2), NumpyLeakyRelu().forward(x, 0.2))
    np.testing.assert_array_equal(leaky.vjp((x,), (g,), negative_slope=0.2)[0],
                                  NumpyLeakyRelu().vjp((x,), (g,), negative_slope=0.2)[0])
    np.testing.assert_allclose(leaky.vjp((x,), (g,), negative_slope=0.2)[0], [[0.2, 0.4, 0.6, 4.0]], rtol=1e-15)


RNG = np.random.default_rng(0)
X, W, B = RNG.normal(size=(4, 3)), RNG.normal(size=(2, 3)), RNG.normal(size=2)


def test_linear_forward_is_x_w_transposed_plus_b():
    np.testing.assert_allclose(pp.linear_forward(X.tolist(), W.tolist(), B.tolist()), X @ W.T + B, rtol=1e-14)


def test_weight_gradient_skips_zero_terms_and_still_equals_the_dense_product():
    dz = RNG.normal(size=(4, 2))
    dz[1, 0] = dz[3, 0] = 0.0  # a ReLU's zeros
    dz[:, 1] = 0.0  # a unit inactive for the whole batch
    got = np.array(pp.weight_gradient(X.tolist(), dz.tolist()))
    np.testing.assert_allclose(got, dz.T @ X, rtol=1e-14)
    assert got[1].tolist() == [0.0, 0.0, 0.0]


def test_input_gradient_is_dz_w_and_the_linear_vjp_skips_it_when_asked():
    dz = RNG.normal(size=(4, 2))
    np.testing.assert_allclose(pp.input_gradient(W.tolist(), dz.tolist()), dz @ W, rtol=1e-14)
    relu_out = np.maximum(X, 0.0)  # more zeros in x than in dz: dW is summed over x's nonzeros
    dx, dW, db = pp.Linear().vjp((relu_out.tolist(), W.tolist(), B.tolist()), (dz.tolist(),))
    np.testing.assert_allclose(dW, dz.T @ relu_out, rtol=1e-14)
    np.testing.assert_allclose(dx, dz @ W, rtol=1e-14)
    np.testing.assert_allclose(db, dz.sum(axis=0), rtol=1e-14)
    assert pp.Linear().vjp((X.tolist(), W.tolist(), B.tolist()), (dz.tolist(),), input_grad=False)[0] is None


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
def test_each_activation_backward_is_the_derivative_of_its_forward(name):
    z = [[-1.5, -0.2, 0.3, 2.0]]
    operator = pp.LIST_OPERATORS[name]()
    forward = operator.forward
    slopes = operator.vjp((z,), ([[1.0] * 4],))[0][0]
    h = 1e-6
    for k, v in enumerate(z[0]):
        numeric = (forward([[v + h]])[0][0] - forward([[v - h]])[0][0]) / (2 * h)
        assert math.isclose(slopes[k], numeric, rel_tol=1e-6, abs_tol=1e-9), (name, v)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_each_loss_and_its_gradient_agree_with_the_reference(loss):
    spec = NetworkSpec((3, 2), ("identity",), loss)
    case = make_case(spec, 4, seed=1, logit_scale=100.0)
    out = (case.x @ case.params[0][0].T + case.params[0][1]).tolist()
    operator = pp.LIST_OPERATORS[loss]()
    value, (delta, _) = operator.forward(out, case.y.tolist()), operator.vjp((out, case.y.tolist()), (1.0,))
    ref_value, ref_grads = loss_and_grads(spec, case.params, case.x, case.y)
    assert value == pytest.approx(ref_value, rel=1e-13)
    np.testing.assert_allclose(np.array(delta).T @ case.x, ref_grads[0][0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("labels, bad", [([2, -1, 0], "label -1 at row 1"), ([2, 4, 0], "label 4 at row 1"),
                                         ([0, 1.5, 2], "label 1.5 at row 1")])
def test_cross_entropy_refuses_a_label_that_is_no_class_naming_it(labels, bad):
    # -1 would index the row from its end: a wrong loss and no error
    op, logits = pp.LIST_OPERATORS["cross_entropy"](), [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0], [0.3, 0.3, 0.1, 0.2]]
    for call in (lambda: op.forward(logits, labels), lambda: op.vjp((logits, labels), (1.0,))):
        with pytest.raises(ValueError, match=f"{bad}; expected a class index 0..3 \\(or ignore_index=-100\\)"):
            call()
