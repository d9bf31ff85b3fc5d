"""An operator record: its non-differentiable inputs come from its integer inputs, and a
record that names too few inputs or an unknown dtype is refused with a clear message."""

import pytest

from harness.core.mapping import Input
from harness.ops.records import OpRecord


def record(**kw):
    base = dict(name="lookup", summary="rows by index", reference=lambda i, w: w[i],
                inputs=(Input((3,), kind="int", high=4), Input((4, 2))), samples=lambda rng, dtype: [],
                input_names=("indices", "W"))
    return OpRecord(**{**base, **kw})


def test_integer_inputs_are_the_nondifferentiable_ones():
    assert record().nondifferentiable == ("indices",)


def test_a_record_naming_too_few_inputs_is_refused():
    with pytest.raises(ValueError, match="1 input names for 2 inputs"):
        record(input_names=("W",))


def test_an_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="float16"):
        record(dtypes=("float16",))
