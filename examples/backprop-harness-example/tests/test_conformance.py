"""This package's own tests: backprop-harness's whole conformance suite, one line."""

from backprop_harness_example.mlp import ExampleImplementation, backprop

import harness


@harness.parametrize_with_checks([ExampleImplementation, backprop])
def test_conformance(impl, check):
    check(impl)
