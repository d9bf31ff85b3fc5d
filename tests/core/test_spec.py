"""The network spec: validated on construction, immutable, and parsed from CLI text."""

import pytest

from harness.core.spec import ACTIVATIONS, SEED_SPEC, NetworkSpec


def test_seed_spec_is_the_canonical_mlp():
    assert SEED_SPEC.sizes == (784, 500, 10)
    assert SEED_SPEC.activations == ("relu", "identity")
    assert SEED_SPEC.loss == "cross_entropy"
    assert SEED_SPEC.n_params == 784 * 500 + 500 + 500 * 10 + 10 == 397_510


def test_spec_is_immutable_and_hashable():
    spec = NetworkSpec([3, 2], ["tanh"], "mse")
    assert spec.sizes == (3, 2) and spec.activations == ("tanh",)
    with pytest.raises(AttributeError):
        spec.sizes = (4, 2)
    assert hash(spec) == hash(NetworkSpec((3, 2), ("tanh",), "mse"))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"sizes": (3,), "activations": ()}, ["sizes", "(3,)", "at least two"]),
        ({"sizes": (3, 0), "activations": ("relu",)}, ["sizes", "0", ">= 1"]),
        ({"sizes": (3, 2.5), "activations": ("relu",)}, ["sizes", "2.5"]),
        ({"sizes": (3, 2), "activations": ("relu", "relu")}, ["activations", "expected 1", "got 2"]),
        ({"sizes": (3, 2), "activations": ("softplus",)}, ["activations", "'softplus'", *ACTIVATIONS]),
        ({"sizes": (3, 2), "activations": ("relu",), "loss": "hinge"}, ["loss", "'hinge'", "cross_entropy", "mse"]),
        ({"sizes": "3,2", "activations": ("relu",)}, ["sizes", "sequence"]),
    ],
)
def test_invalid_spec_names_field_value_and_allowed(kwargs, words):
    with pytest.raises(ValueError) as info:
        NetworkSpec(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_parse_repeats_a_single_activation():
    spec = NetworkSpec.parse("4,3,2", "tanh", "mse")
    assert spec == NetworkSpec((4, 3, 2), ("tanh", "tanh"), "mse")
    with pytest.raises(ValueError, match="784,x"):
        NetworkSpec.parse("784,x", "relu", "mse")


def test_shapes_and_costs_follow_the_widths():
    spec = NetworkSpec((4, 3, 2), ("relu", "identity"), "mse")
    assert spec.shapes() == [((3, 4), (3,)), ((2, 3), (2,))]  # W as torch.nn.Linear: (out, in)
    assert spec.n_layers == 2 and spec.n_params == 3 * 4 + 3 + 2 * 3 + 2
    assert spec.multiply_adds(5) == 5 * (4 * 3 + 3 * 2)
    assert spec.describe() == "4-3-2 relu,identity mse"


def test_numpy_integer_widths_are_accepted_as_ints():
    import numpy as np

    spec = NetworkSpec(np.array([3, 2]), ("tanh",))
    assert spec.sizes == (3, 2) and all(type(w) is int for w in spec.sizes)
