import numpy as np
import pytest

from harness.core import reference
from harness.core.cases import make_case
from harness.core.spec import ACTIVATIONS, NetworkSpec
from harness.networks.cnn import cnn
from harness.ops.catalog import NUMPY_OPERATORS
from harness.ops.chain import Bound, Network, Node, backward, forward, loss_and_gradients, mlp, predictions
from harness.ops.pure_python_ops import LIST_OPERATORS
from tests.networks.providers import numpy_provider
from tests.operator_corpus import convolution as conv


def batch(network, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, *network.input_shape)), rng.integers(0, network.n_classes, n)


def test_backward_matches_torch_autograd_of_the_same_cnn():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net = cnn()
    params = net.initial_parameters(3)
    x, y = batch(net)
    loss, grads = loss_and_gradients(net, numpy_provider(), params, x, y)

    (cw, cb), (lw, lb) = [tuple(torch.tensor(p, requires_grad=True) for p in group) for group in params]
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), cw, cb, padding=1)), 2)
    expected = F.cross_entropy(F.linear(h.reshape(len(y), -1), lw, lb), torch.tensor(y))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    for got, want in zip([g for group in grads for g in group], [cw, cb, lw, lb]):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_backward_agrees_with_a_central_difference_along_a_random_direction():
    net = cnn()
    provider = numpy_provider()
    params = net.initial_parameters(1)
    x, y = batch(net, seed=1)
    _, grads = loss_and_gradients(net, provider, params, x, y)
    rng = np.random.default_rng(2)
    direction = [tuple(rng.standard_normal(p.shape) for p in group) for group in params]
    h = 1e-6

    def loss_at(t):
        moved = [tuple(p + t * d for p, d in zip(group, dgroup)) for group, dgroup in zip(params, direction)]
        return float(forward(net, provider, moved, x, y).loss)

    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    analytic = sum(float(np.sum(g * d)) for group, dgroup in zip(grads, direction) for g, d in zip(group, dgroup))
    assert analytic == pytest.approx(numeric, rel=1e-6)


def test_a_wrong_operator_backward_changes_the_chain_gradient_and_nothing_else():
    net = cnn()
    params = net.initial_parameters(0)
    x, y = batch(net)
    loss, good = loss_and_gradients(net, numpy_provider(), params, x, y)
    bad_loss, bad = loss_and_gradients(net, numpy_provider(conv.Conv2dWeightGradReversed), params, x, y)
    assert bad_loss == loss
    assert not np.allclose(bad[0][0], good[0][0])  # conv2d W: the kernel comes out reversed
    np.testing.assert_array_equal(bad[1][0], good[1][0])  # the linear layer's gradient does not depend on it


def test_forward_keeps_what_flowed_into_every_node_and_the_reference_gives_the_same_loss():
    net = cnn()
    provider = numpy_provider()
    params = net.initial_parameters(0)
    x, y = batch(net, n=2)
    flow = forward(net, provider, params, x, y)
    assert [tuple(np.shape(a) for a in args) for args in flow.inputs] == [
        ((2, 1, 8, 8), (8, 1, 3, 3), (8,)), ((2, 8, 8, 8),), ((2, 8, 8, 8),), ((2, 8, 4, 4),),
        ((2, 128), (10, 128), (10,)), ((2, 10), (2,))]
    assert float(forward(net, provider, params, x, y, reference=True).loss) == pytest.approx(float(flow.loss), rel=1e-14)
    grads, dx = backward(net, provider, flow)
    assert dx.shape == x.shape and [tuple(g.shape for g in group) for group in grads] == net.parameter_shapes()
    assert predictions(net, provider, params, x).shape == (2,)


def test_parameters_follow_torch_default_initialisation_bounds():
    net = cnn()
    (cw, cb), (lw, lb) = net.initial_parameters(0, "float32")
    assert cw.dtype == np.float32 and np.abs(cw).max() <= 1 / 3 and np.abs(cb).max() <= 1 / 3
    assert np.abs(lw).max() <= 1 / np.sqrt(128) and np.abs(lb).max() <= 1 / np.sqrt(128)
    assert net.parameter_names() == ["conv2d W", "conv2d b", "linear W", "linear b"]


def test_bad_networks_and_providers_are_named():
    with pytest.raises(ValueError, match="provider 'dict' has no operator 'conv2d'"):
        forward(cnn(), {}, cnn().initial_parameters(0), *batch(cnn()))
    with pytest.raises(ValueError, match="weight 'W'"):
        Node("linear", {}, ("W",))
    with pytest.raises(ValueError, match="at least two Nodes"):
        Network("one", (Node("relu"),), (3,), 2)
    with pytest.raises(ValueError, match=r"parameters shaped .* expected"):
        cnn().check_parameters([(np.zeros((8, 1, 3, 3)), np.zeros(8))])
    with pytest.raises(ValueError, match="image size 7"):
        cnn(image=7)


MLP_SPECS = [NetworkSpec((6, 5, 3), (act, "identity"), "cross_entropy") for act in ACTIVATIONS] + [
    NetworkSpec((6, 5, 4, 3), ("tanh", "leaky_relu", "sigmoid"), "mse")]


@pytest.mark.parametrize("spec", MLP_SPECS, ids=lambda s: s.describe())
def test_the_mlp_chain_is_the_reference_mlp_with_numpy_and_with_pure_python_lists(spec):
    case = make_case(spec, 4, seed=5)
    value, grads, dx = reference.loss_and_grads(spec, case.params, case.x, case.y, input_grad=True)
    network = mlp(spec)
    assert [n.op for n in network.nodes][-1] == spec.loss and network.parameter_shapes() == spec.shapes()
    numpy_chain = Bound(network, {n.op: NUMPY_OPERATORS[n.op]() for n in network.nodes}, arrays=False)
    lists = Bound(network, {n.op: LIST_OPERATORS[n.op]() for n in network.nodes}, arrays=False)
    for chain, params, x, y in [(numpy_chain, case.params, case.x, case.y),
                                (lists, [(W.tolist(), b.tolist()) for W, b in case.params], case.x.tolist(), case.y.tolist())]:
        loss, got, got_dx = chain.step(params, x, y, input_grad=True)
        assert float(loss) == pytest.approx(value, rel=1e-13)
        for mine, want in zip([g for group in got for g in group], [g for group in grads for g in group]):
            np.testing.assert_allclose(np.array(mine), want, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(np.array(got_dx), dx, rtol=1e-11, atol=1e-14)
        _, same, none = chain.step(params, x, y)  # the batch's gradient skipped, nothing else changed
        assert none is None and all(np.array_equal(a, b) for ga, gb in zip(same, got) for a, b in zip(ga, gb))


def test_a_first_operator_whose_own_vjp_cannot_skip_the_batch_gradient_is_asked_for_it():
    from tests.operator_corpus.dense import LinearBiasNotSummed  # a subclass with its own vjp(inputs, cotangents)

    spec = NetworkSpec((3, 2), ("identity",), "mse")
    operators = {n.op: NUMPY_OPERATORS[n.op]() for n in mlp(spec).nodes}
    assert Bound(mlp(spec), operators).skips_input_grad
    operators["linear"] = LinearBiasNotSummed()
    chain = Bound(mlp(spec), operators)
    assert not chain.skips_input_grad
    case = make_case(spec, 3, seed=1)
    assert chain.step(case.params, case.x, case.y)[2] is None


def test_the_loss_s_value_and_vjp_in_one_call_give_the_step_of_the_separate_calls_and_a_variant_is_not_fused():
    from tests.operator_corpus.losses import CrossEntropySubtractsLabels

    spec = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")
    case = make_case(spec, 4, seed=2)
    fused = mlp_chain_numpy(spec)
    assert fused.plans[False].loss_forward_vjp is not None
    separate = mlp_chain_numpy(spec)
    for plan in separate.plans.values():
        plan.loss_forward_vjp = None
    (l1, g1, _), (l2, g2, _) = (c.step(case.params, case.x, case.y) for c in (fused, separate))
    np.testing.assert_allclose(l1, l2, rtol=1e-15)
    for a, b in zip(g1, g2):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-17)
    # a subclass overriding vjp (here a planted bug) is run through its own vjp, not the fused one
    buggy = mlp_chain_numpy(spec, cross_entropy=CrossEntropySubtractsLabels)
    assert buggy.plans[False].loss_forward_vjp is None
    _, g3, _ = buggy.step(case.params, case.x, case.y)
    assert not np.allclose(g3[-1][0], g1[-1][0])


def mlp_chain_numpy(spec, **replace):
    from harness.ops.chain import mlp_chain

    return mlp_chain(spec, {**NUMPY_OPERATORS, **replace})


IN_PLACE_SPECS = [NetworkSpec((6, 5, 4, 3), ("relu", "relu", "identity"), "cross_entropy"),
                  NetworkSpec((6, 5, 3), ("relu", "relu"), "cross_entropy"),  # relu's cotangent from the loss
                  NetworkSpec((6, 5, 3), ("relu", "relu"), "mse")]


@pytest.mark.parametrize("spec", IN_PLACE_SPECS, ids=lambda s: s.describe())
@pytest.mark.parametrize("input_grad", [False, True])
def test_relu_runs_in_place_on_the_plan_s_own_arrays_only_and_the_step_is_the_step_without(spec, input_grad):
    case = make_case(spec, 4, seed=3)
    chain = mlp_chain_numpy(spec)
    plan = chain.plans[input_grad]
    relus = [i for i, n in enumerate(chain.network.nodes) if n.op == "relu"]
    assert relus and all(plan.forwards[i][2] == 1 for i in relus)  # over the linear layer's output
    assert all(how == 2 for i, _, _, how in plan.backwards if i in relus)  # over the next node's gradient
    x, params = case.x.copy(), [(W.copy(), b.copy()) for W, b in case.params]
    loss, grads, dx = chain.step(params, x, case.y, input_grad=input_grad)
    kept = [tuple(g.copy() for g in group) for group in grads]
    # the same chain without the plan (each operator called as a check calls it: no out=)
    lenient = Bound(chain.network, {n.op: NUMPY_OPERATORS[n.op]() for n in chain.network.nodes})
    flow = lenient.forward(case.params, case.x, case.y)
    want, want_dx = lenient.backward(flow, input_grad=input_grad)
    assert loss == flow.loss
    for got_group, want_group in zip(grads, want):
        for got, expected in zip(got_group, want_group):
            np.testing.assert_array_equal(got, expected)
    if input_grad:
        np.testing.assert_array_equal(dx, want_dx)
    # the batch and the parameters are not written over; a second step leaves the first's gradients alone
    np.testing.assert_array_equal(x, case.x)
    for group, original in zip(params, case.params):
        for p, o in zip(group, original):
            np.testing.assert_array_equal(p, o)
    chain.step(params, x + 1.0, case.y, input_grad=input_grad)
    for group, saved in zip(grads, kept):
        for g, s in zip(group, saved):
            np.testing.assert_array_equal(g, s)


def test_a_relu_variant_or_bug_is_not_run_in_place_and_a_chain_starting_with_relu_leaves_the_batch_alone():
    from tests.operator_corpus.activations import ReluInPlace, ReluOneAtZero

    spec = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")
    for variant in (ReluOneAtZero, ReluInPlace):
        plan = mlp_chain_numpy(spec, relu=variant).plans[False]
        assert plan.forwards[1][2] == 0 and all(how != 2 for _, _, _, how in plan.backwards)
    # what flows into the first node is the caller's batch: never the plan's to write over
    network = Network("relu first", (Node("relu"), Node("linear", {}, (("W", (3, 6)), ("b", (3,)))), Node("cross_entropy")),
                      (6,), 3)
    chain = Bound(network, {n.op: NUMPY_OPERATORS[n.op]() for n in network.nodes}, arrays=False)
    assert chain.plans[True].forwards[0][2] == 0
    rng = np.random.default_rng(0)
    x, params = rng.standard_normal((4, 6)), network.initial_parameters(0)
    original = x.copy()
    _, grads, dx = chain.step(params, x, np.array([0, 1, 2, 1]), input_grad=True)
    np.testing.assert_array_equal(x, original)
    np.testing.assert_array_equal(dx, Bound(network, {n.op: NUMPY_OPERATORS[n.op]() for n in network.nodes}).step(
        params, x, np.array([0, 1, 2, 1]), input_grad=True)[2])
