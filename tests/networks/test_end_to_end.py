import numpy as np
import pytest

from harness.checks.mapping_runner import check_mapping
from harness.core.mapping_cases import sample_cases
from harness.networks.cnn import cnn
from harness.networks.end_to_end import network_mapping, node_cases
from harness.ops.chain import forward
from tests.networks.providers import numpy_provider
from tests.operator_corpus import convolution as conv


def case_labelled(mapping, dtype, label):
    return next(c for c in sample_cases(mapping, dtype) if c.label.startswith(label))


def test_the_cnn_mapping_names_its_inputs_and_draws_realistic_cases():
    mapping = network_mapping(cnn(), numpy_provider(), provider_name="corpus")
    assert mapping.name == "cnn[corpus]"
    assert [i.name for i in mapping.inputs] == ["conv2d W", "conv2d b", "linear W", "linear b", "x", "labels"]
    labels = [c.label for c in sample_cases(mapping, "float32")]
    assert labels == ["random", "large", "torch's initialisation, pixels in [0, 1)",
                      "torch's initialisation, a single sample"]
    single = case_labelled(mapping, "float32", "torch's initialisation, a single")
    assert single.inputs[4].shape == (1, 1, 8, 8) and single.inputs[5].dtype.kind == "i"
    assert np.abs(single.inputs[2]).max() <= 1 / np.sqrt(128)


# The full-size CNN in float32 (the dtype where rounding is hardest to tell from error);
# in float64 the same chain at 2 channels and 4x4 images (a tenth of the cost).
@pytest.mark.parametrize("dtype, network", [("float32", cnn()), ("float64", cnn(channels=2, image=4))])
def test_the_correct_cnn_passes_every_check_end_to_end(dtype, network):
    mapping = network_mapping(network, numpy_provider())
    results = check_mapping(mapping, case_labelled(mapping, dtype, "torch's initialisation, a single"))
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    judged = {r.check for r in results if r.verdict.value == "PASS"}
    assert {"vjp_matches_oracle", "vjp_probes", "forward_matches_reference"} <= judged


def test_a_wrong_conv2d_weight_gradient_fails_end_to_end_on_that_tensor():
    mapping = network_mapping(cnn(channels=2, image=4), numpy_provider(conv.Conv2dWeightGradReversed))
    results = check_mapping(mapping, case_labelled(mapping, "float64", "torch's initialisation, pixels"))
    vjp = next(r for r in results if r.check == "vjp_matches_oracle")
    assert vjp.verdict.value == "FAIL"
    assert [t.name for t in vjp.tensors if t.verdict.value == "FAIL"] == ["conv2d W"]


def test_node_cases_hold_what_flowed_into_each_node():
    net = cnn()
    provider = numpy_provider()
    mapping = network_mapping(net, provider)
    case = case_labelled(mapping, "float32", "torch's initialisation, pixels")
    parts = node_cases(net, provider, case)
    assert [label for label, _, _ in parts] == [
        "conv2d (node 0 of cnn)", "relu (node 1 of cnn)", "max_pool2d (node 2 of cnn)", "reshape (node 3 of cnn)",
        "linear (node 4 of cnn)", "cross_entropy (node 5 of cnn)"]
    flow = forward(net, provider, [case.inputs[0:2], case.inputs[2:4]], case.inputs[4], case.inputs[5])
    for (_, op, item), args, node in zip(parts, flow.inputs, net.nodes):
        assert op is provider[node.op] and item.params == node.params and item.dtype == "float32"
        for got, want in zip(item.inputs, args):
            np.testing.assert_array_equal(got, want)
