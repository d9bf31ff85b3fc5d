"""The Operator base: a subclass of a correct operator keeps the correct forward as its
float64 reference, so a subclass that changes the forward is compared with the right one."""

import numpy as np

from harness.ops.numpy_activations import Relu
from harness.ops.numpy_operator import as_mapping, single, widened


class DoubledRelu(Relu):
    def forward(self, x):
        return 2 * np.maximum(x, 0)


def test_a_subclass_keeps_the_correct_forward_as_its_reference():
    x = np.array([-1.0, 2.0], dtype=np.float32)
    out = DoubledRelu().reference(x)
    assert out.dtype == np.float64 and out.tolist() == [0.0, 2.0]


def test_the_mapping_built_from_an_operator_is_caught_when_its_forward_is_wrong():
    import harness

    results = harness.check(as_mapping(DoubledRelu()))
    assert any(r.check == "forward_matches_reference" and not r.ok for r in results)


def test_helpers():
    assert single((3,)) == 3 and single(4) == 4
    assert widened((np.zeros(2, np.float32), np.zeros(2, np.int64)))[0].dtype == np.float64
