"""Shared command-line options: value types that name the bad text and what was
expected, the default network, and which implementations ``--impl`` selects."""

import argparse

import pytest

from harness.commands import options
from harness.core.protocol import ImplementationError
from harness.core.spec import SEED_SPEC, NetworkSpec


@pytest.mark.parametrize(
    "convert, text, value",
    [
        (options.positive_int, "3", 3),
        (options.positive_float, "0.25", 0.25),
        (options.unit_interval, "0", 0.0),
        (options.unit_interval, "0.9", 0.9),
        (options.positive_ints, "1,64,256", [1, 64, 256]),
    ],
)
def test_good_values_are_converted(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize(
    "convert, text, message",
    [
        (options.positive_int, "0", "0 is not >= 1"),
        (options.positive_int, "2.5", "'2.5' is not an integer"),
        (options.positive_float, "0", "0.0 is not a finite number > 0"),
        (options.positive_float, "inf", "inf is not a finite number > 0"),
        (options.positive_float, "nan", "nan is not a finite number > 0"),
        (options.positive_float, "fast", "'fast' is not a number"),
        (options.unit_interval, "1", "1.0 is not in [0, 1)"),
        (options.unit_interval, "-0.1", "-0.1 is not in [0, 1)"),
        (options.positive_ints, "1,a", "'1,a': expected comma-separated integers, e.g. 1,64,256"),
        (options.positive_ints, "4,0", "'4,0': batch sizes must be >= 1, got 0"),
    ],
)
def test_bad_values_name_the_text_and_what_was_expected(convert, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        convert(text)
    assert str(info.value) == message


def test_the_default_network_is_relu_hidden_and_identity_out():
    assert options.network(options.DEFAULT_SIZES, None, None) == SEED_SPEC
    assert options.network("4,3,3,2", None, "mse") == NetworkSpec((4, 3, 3, 2), ("relu", "relu", "identity"), "mse")
    assert options.network("4,2", "tanh", None).activations == ("tanh",)


def test_shared_arguments_have_the_same_choices_everywhere():
    parser = argparse.ArgumentParser()
    options.add_loss(parser)
    options.add_dtype(parser, repeatable=True)
    options.add_seed(parser, "everything")
    options.add_impl(parser)
    args = parser.parse_args(["--dtype", "float32", "--dtype", "float64", "--impl", "a", "--impl", "b"])
    assert args.dtype == ["float32", "float64"] and args.impl == ["a", "b"] and args.seed == 0 and args.loss is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--loss", "hinge"])


def test_named_implementations_are_resolved_once_each_and_marked_named():
    impls, named = options.implementations(["numpy", "pure-python", "numpy"])
    assert named and [i.name for i in impls] == ["numpy", "pure-python"]
    with pytest.raises(ImplementationError, match="no-such"):
        options.implementations(["no-such"])


def test_without_names_every_available_implementation_is_selected():
    from harness.core.registry import available

    impls, named = options.implementations(None)
    assert not named and [i.name for i in impls] == list(available())
