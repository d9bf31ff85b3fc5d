"""Hints name what a wrong gradient looks like: all zero, a constant factor, a
transpose, a kernel not flipped, an error shared along a row, one element."""

import numpy as np

from harness.core.mapping_hints import flipped_axes, row_shared, tensor_hints, vjp_hint
from harness.core.results import TensorReport, Verdict

rng = np.random.default_rng(0)


def test_each_pattern_is_named():
    e = rng.normal(size=(4, 4))
    assert "all zero" in tensor_hints("x", np.zeros((4, 4)), e)[0]
    assert "constant factor 4" in tensor_hints("x", 4 * e, e)[0]  # the batch size (leading dimension)
    assert "sign flipped" in tensor_hints("x", -e, e)[0]
    assert "transpose" in tensor_hints("x", e.T, e)[0]
    k = rng.normal(size=(3, 2, 5))
    assert flipped_axes(k[..., ::-1], k) == (2,)
    assert "not flipped" in tensor_hints("w", k[..., ::-1], k)[0]
    shared = e + rng.normal(size=(4, 1))
    assert row_shared(shared - e) and "the same for every element along the last axis" in tensor_hints("x", shared, e)[0]
    one = e.copy()
    one[1, 2] += 1
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    assert "a single element of the gradient of x is wrong, at [1, 2]" in tensor_hints("x", one, e, mask)[0]
    assert "missing or extra term" in tensor_hints("x", e + rng.normal(size=(4, 4)), e)[0]


def test_no_hint_for_a_right_answer_and_one_line_over_tensors():
    e = rng.normal(size=(3, 3))
    assert flipped_axes(e, e) is None and not row_shared(np.zeros((2, 2)))
    reports = [TensorReport("a", Verdict.FAIL, n_failed=9), TensorReport("b", Verdict.PASS)]
    hint = vjp_hint(reports, [2 * e, e], [e, e], float32_sized=True)
    assert "constant factor 2" in hint and "float32 rounding" in hint and "only the gradient of a is wrong" in hint
    assert vjp_hint([TensorReport("a", Verdict.PASS)], [e], [e]) == ""
