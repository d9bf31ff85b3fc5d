import pytest

from harness.networks.cnn import cnn
from harness.networks.providers import OpsProvider, missing, network_providers
from tests.networks.providers import registered
from tests.operator_corpus import convolution as conv


def test_the_numpy_provider_gives_each_operator_as_a_mapping_once():
    provider = OpsProvider("numpy")
    assert "conv2d" in provider and "no_such_op" not in provider
    assert provider["conv2d"] is provider["conv2d"] and provider["conv2d"].name == "conv2d[numpy]"
    assert [i.name for i in provider["conv2d"].inputs] == ["x", "w", "b"]
    with pytest.raises(KeyError):
        provider["no_such_op"]
    assert missing(cnn(), provider) == []


def test_providers_lacking_an_operator_are_left_out_or_refused_when_named():
    from harness import ops

    ops.register_provider(ops.Provider("relu-only", {"relu": ops.provider("numpy").operators["relu"]}))
    try:
        chosen, left_out = network_providers(cnn())
        assert "numpy" in chosen and left_out["relu-only"].startswith("provides no conv2d, max_pool2d")
        with pytest.raises(ValueError, match="--provider relu-only: provides no conv2d"):
            network_providers(cnn(), ["relu-only"])
    finally:
        ops.unregister_provider("relu-only")
    with pytest.raises(ValueError, match="--provider 'nope': no operator provider of that name"):
        network_providers(cnn(), ["nope"])


def test_a_registered_provider_with_a_planted_bug_is_found_by_name():
    with registered("numpy-planted", conv.Conv2dWeightGradReversed) as name:
        chosen, _ = network_providers(cnn(), [name])
        assert isinstance(chosen[name]["conv2d"].vjp.__self__, conv.Conv2dWeightGradReversed)


def test_a_provider_unavailable_here_is_left_out_with_its_reason():
    from harness import ops

    ops.register_provider(ops.Provider("elsewhere", dict(ops.provider("numpy").operators), available=lambda: "needs a GPU"))
    try:
        chosen, left_out = network_providers(cnn())
        assert "elsewhere" not in chosen and left_out["elsewhere"] == "not available here: needs a GPU"
        with pytest.raises(ValueError, match="--provider elsewhere: not available here: needs a GPU"):
            network_providers(cnn(), ["elsewhere"])
    finally:
        ops.unregister_provider("elsewhere")
