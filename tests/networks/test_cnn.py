import pytest

from harness.networks.cnn import cnn, model


def test_the_cnn_is_the_issue_s_chain_of_operators():
    net = model("cnn")
    assert [n.op for n in net.nodes] == ["conv2d", "relu", "max_pool2d", "reshape", "linear", "cross_entropy"]
    assert net.nodes[0].params == {"stride": 1, "padding": 1, "dilation": 1}
    assert net.nodes[2].params == {"kernel": 2, "stride": 2, "padding": 0}
    assert net.parameter_shapes() == [((8, 1, 3, 3), (8,)), ((10, 128), (10,))]
    assert net.input_shape == (1, 8, 8) and net.n_classes == 10
    assert sum(p.size for group in net.initial_parameters(0) for p in group) == 1370


def test_a_smaller_cnn_keeps_the_chain_and_scales_the_shapes():
    net = cnn(channels=2, image=4)
    assert net.parameter_shapes() == [((2, 1, 3, 3), (2,)), ((10, 8), (10,))]
    assert net.nodes[3].params == {"shape": (-1, 8)}


def test_an_unknown_model_is_named():
    with pytest.raises(ValueError, match="--model 'resnet': expected one of cnn"):
        model("resnet")
