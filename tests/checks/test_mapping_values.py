"""Every VJP element against the float64 oracle, and the forward against a reference:
realistic backward bugs fail with a hint; correct float32 and float64 mappings pass,
with any valid convention at kinks and ties."""

import numpy as np
import pytest

from harness.checks.mapping_runner import check_mapping
from harness.checks.mapping_values import ELEMENTWISE_LIMIT, check_forward_matches_reference, check_vjp_matches_oracle
from harness.core.mapping import Input, Mapping
from harness.core.mapping_cases import sample_cases
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import case_of, trial_for, variant


def layer_norm(x):
    xc = x - x.mean(-1, keepdims=True)
    return xc / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)


def layer_norm_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    xc = x - x.mean(-1, keepdims=True)
    inv = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
    xhat = xc * inv
    return (inv * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)),)


LAYER_NORM = Mapping("layer_norm", layer_norm, layer_norm_vjp, inputs=[Input((4, 8))], dtypes=("float32", "float64"))


def verdict(mapping, dtype="float64", label="random"):
    return check_vjp_matches_oracle(trial_for(mapping, dtype, label))


@pytest.mark.parametrize("mapping", [examples.softmax, examples.matmul, examples.conv1d, examples.embedding, LAYER_NORM,
                                     examples.max_pool1d], ids=lambda m: m.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_correct_mappings_pass_on_every_case(mapping, dtype):
    for label in ("random", "large", "ties"):
        if any(c.label == label for c in sample_cases(mapping, dtype)):
            result = verdict(mapping, dtype, label)
            assert result.verdict is Verdict.PASS, result.describe()


def test_float32_layer_norm_of_data_with_a_large_offset_passes_on_its_rounding_sensitivity():
    trial = trial_for(LAYER_NORM, "float32")
    trial.case.inputs = (trial.case.inputs[0] + np.float32(1000),)  # x - mean loses digits in float32
    result = check_vjp_matches_oracle(trial)
    assert result.verdict is Verdict.PASS, result.describe()


@pytest.mark.parametrize("slope", [0.0, 0.5, 1.0])
def test_every_valid_relu_convention_at_the_kink_passes_and_an_invalid_one_fails(slope):
    def vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return (np.where(x > 0, g, np.where(x == 0, slope * g, 0)).astype(x.dtype),)

    result = verdict(variant(examples.relu, vjp=vjp), "float32", "kinks")
    assert result.verdict is Verdict.PASS and "non-differentiable elements judged by their bracket" in result.message

    def invalid(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return (np.where(x > 0, g, np.where(x == 0, 2 * g, 0)).astype(x.dtype),)  # relu'(0) = 2: no subgradient

    result = verdict(variant(examples.relu, vjp=invalid), "float32", "kinks")
    assert result.verdict is Verdict.FAIL and result.tensors[0].worst[0].bracket is not None


def test_abs_at_zero_accepts_any_slope_in_minus_one_to_one():
    for at_zero in (-1.0, 0.0, 1.0):
        def vjp(inputs, cotangents, at_zero=at_zero):
            (x,), (g,) = inputs, cotangents
            return (np.where(x == 0, at_zero, np.sign(x)) * g,)

        assert verdict(variant(examples.absolute, vjp=vjp), "float64", "kinks").ok


def test_softmax_without_its_off_diagonal_term_fails():
    def diagonal_only(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        s = examples.softmax_forward(x)
        return (s * (1 - s) * g,)

    result = verdict(variant(examples.softmax, vjp=diagonal_only), "float32")
    assert result.verdict is Verdict.FAIL and "missing or extra term" in result.hint


def test_layer_norm_missing_its_mean_terms_fails_with_a_row_hint():
    def no_mean(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        xc = x - x.mean(-1, keepdims=True)
        inv = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
        xhat = xc * inv
        return (inv * (g - xhat * (g * xhat).mean(-1, keepdims=True)),)  # forgot - mean(g)

    result = verdict(variant(LAYER_NORM, vjp=no_mean))
    assert result.verdict is Verdict.FAIL and "same for every element along the last axis" in result.hint


def test_a_convolution_whose_kernel_is_not_flipped_in_the_backward_fails_with_that_hint():
    def unflipped(inputs, cotangents):
        (_, w), (g,) = inputs, cotangents
        k = w.shape[-1]
        padded = np.pad(g, ((0, 0), (0, 0), (k - 1, k - 1)))
        windows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=-1)
        return np.einsum("nolk,ock->ncl", windows, w), examples.conv1d_vjp(inputs, cotangents)[1]

    result = verdict(variant(examples.conv1d, vjp=unflipped))
    assert result.verdict is Verdict.FAIL and "input 0" in result.message and "only the gradient of input 0" in result.hint

    def reversed_kernel_gradient(inputs, cotangents):  # correlation arguments swapped: dw comes out reversed
        dx, dw = examples.conv1d_vjp(inputs, cotangents)
        return dx, dw[..., ::-1]

    result = verdict(variant(examples.conv1d, vjp=reversed_kernel_gradient))
    assert result.verdict is Verdict.FAIL and "reversed along axis 2" in result.hint and "not flipped" in result.hint


def test_repeated_embedding_indices_assigned_instead_of_accumulated_fail():
    def assigned(inputs, cotangents):
        (weight, indices), (g,) = inputs, cotangents
        dw = np.zeros_like(weight)
        dw[indices] += g  # buffered: a repeated index counts once
        return dw, None

    m = variant(examples.embedding, vjp=assigned, inputs=[Input((5, 3)), Input((9,), kind="int", high=3)])
    assert verdict(m).verdict is Verdict.FAIL


def test_float32_rounding_in_a_float64_backward_fails_and_so_does_a_relative_error_of_1e_6():
    def in_float32(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return (examples.softmax_vjp((x.astype(np.float32),), (g.astype(np.float32),))[0].astype(np.float64),)

    result = verdict(variant(examples.softmax, vjp=in_float32))
    assert result.verdict is Verdict.FAIL and "float32 rounding" in result.hint
    assert verdict(variant(examples.softmax, vjp=in_float32), "float32").ok  # the same code is right in float32
    off = variant(examples.softmax, vjp=lambda i, c: (examples.softmax_vjp(i, c)[0] * (1 + 1e-6),))
    assert verdict(off).verdict is Verdict.FAIL


def test_beyond_the_elementwise_limit_the_check_skips_saying_who_judges():
    m = Mapping("tanh", np.tanh, lambda i, c: (c[0] * (1 - np.tanh(i[0]) ** 2),), inputs=[Input((ELEMENTWISE_LIMIT + 1,))])
    result = verdict(m)
    assert result.verdict is Verdict.SKIP and "vjp_probes judges this case" in result.message


def test_a_wrong_forward_with_a_consistent_backward_is_caught_by_the_reference_only():
    def over_axis_0(x):  # softmax over the wrong axis, forward and backward alike
        return examples.softmax_forward(x, axis=0)

    def vjp(inputs, cotangents):
        return examples.softmax_vjp(inputs, cotangents, axis=0)

    without_reference = variant(examples.softmax, forward=over_axis_0, vjp=vjp, jvp=None, reference=None)
    assert verdict(without_reference).ok  # its backward is right for its own forward: differences cannot see it
    wrong = variant(without_reference, reference=examples.softmax_reference)
    assert verdict(wrong).verdict is Verdict.FAIL  # the oracle differentiates the reference where there is one
    result = check_forward_matches_reference(trial_for(wrong))
    assert result.verdict is Verdict.FAIL and "output 0" in result.message
    assert check_forward_matches_reference(trial_for(examples.softmax, "float32", "large")).ok
    assert check_forward_matches_reference(trial_for(examples.relu)).verdict is Verdict.SKIP


def tanh_from_output(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    y = np.tanh(x)
    return (g * (1 - y * y),)  # torch's formula: every digit of tanh'(17) lost but eps |g|


TANH = Mapping("tanh", np.tanh, tanh_from_output, inputs=[Input((6,))], dtypes=("float32", "float64"))
SATURATED = np.array([-40.0, -20.0, -17.0, 17.0, 20.0, 40.0])


def test_a_backward_from_rounded_outputs_passes_where_its_derivative_is_below_their_rounding():
    # tanh'(17) = 7e-15 comes back 0.4% off, tanh'(20) as 0: the outputs' rounding, not a bug
    assert check_vjp_matches_oracle(case_of(TANH, SATURATED)).verdict is Verdict.PASS
    off = variant(TANH, vjp=lambda i, c: (tanh_from_output(i, c)[0] * (1 + 1e-6),))
    mixed = np.concatenate([SATURATED, [0.3, -1.1]])
    assert check_vjp_matches_oracle(case_of(TANH, mixed)).verdict is Verdict.PASS
    assert check_vjp_matches_oracle(case_of(off, mixed)).verdict is Verdict.FAIL  # a 1e-6 relative error still fails


def batch_norm(x):
    xc = x - x.mean(0)
    return xc / np.sqrt((xc * xc).mean(0) + 1e-5)


def batch_norm_vjp(inputs, cotangents, missing_mean=False):
    (x,), (g,) = inputs, cotangents
    xc = x - x.mean(0)
    inv = 1 / np.sqrt((xc * xc).mean(0) + 1e-5)
    xhat = xc * inv
    mean = 0 if missing_mean else g.mean(0)
    return (inv * (g - mean - xhat * (g * xhat).mean(0)),)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_over_two_samples_passes_and_a_missing_term_fails(dtype):
    # over 2 samples the normalised values sit at +-1 whatever x is: the gradient is a
    # cancellation of terms 10^3 times its size, which a correct float32 backward rounds
    bn = Mapping("batch_norm", batch_norm, batch_norm_vjp, inputs=[Input((2, 3))], dtypes=(dtype,))
    x = np.array([[1.4965, -2.4002, 0.3], [1.6629, -1.0988, 0.7]])
    assert check_vjp_matches_oracle(case_of(bn, x, dtype=dtype)).verdict is Verdict.PASS
    wrong = variant(bn, vjp=lambda i, c: batch_norm_vjp(i, c, missing_mean=True))
    assert check_vjp_matches_oracle(case_of(wrong, x, dtype=dtype)).verdict is Verdict.FAIL


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_from_output(inputs, cotangents):
    s = sigmoid(inputs[0])
    return (cotangents[0] * s * (1 - s),)


def test_where_no_tolerance_can_judge_the_verdict_is_inconclusive_never_a_pass():
    # float32 sigmoid at |x| >= 17: s * (1 - s) rounds to 0 at x = 17 while the truth is
    # 4e-8 |c|, below eps |c|: a zero gradient would be as close as the correct one
    m = Mapping("sigmoid", sigmoid, sigmoid_from_output, inputs=[Input((6,))], dtypes=("float32",))
    result = check_vjp_matches_oracle(case_of(m, SATURATED, dtype="float32"))
    assert result.verdict is Verdict.INCONCLUSIVE and "cannot be judged in float32" in result.message
    zero = variant(m, vjp=lambda i, c: (np.zeros_like(i[0]),))
    assert check_vjp_matches_oracle(case_of(zero, SATURATED, dtype="float32")).verdict is not Verdict.PASS
    # where one element can be judged (x = 2), the same tensor passes, and a zero gradient fails
    judged = np.concatenate([SATURATED, [2.0]])
    assert check_vjp_matches_oracle(case_of(m, judged, dtype="float32")).verdict is Verdict.PASS
    assert check_vjp_matches_oracle(case_of(zero, judged, dtype="float32")).verdict is Verdict.FAIL


def test_an_element_the_oracle_cannot_differentiate_is_not_judged():
    def square_below_one(x):
        return np.where(x < 1.0, x * x, np.nan)  # not finite just past 1

    m = Mapping("square", square_below_one, lambda i, c: (2 * i[0] * c[0],), inputs=[Input((2,))])
    result = check_vjp_matches_oracle(case_of(m, np.array([0.5, 1 - 1e-9])))
    assert result.verdict is Verdict.INCONCLUSIVE and "cannot differentiate" in result.message


def test_an_element_just_off_a_kink_is_taken_again_with_smaller_steps():
    x = np.array([-1e-3, 2e-4, 0.5, -1.5])  # the first steps straddle abs's kink at 0
    result = check_vjp_matches_oracle(case_of(examples.absolute, x))
    assert result.verdict is Verdict.PASS and "non-differentiable" not in result.message
    def flipped_at_the_first(inputs, cotangents):  # the sign of x = -1e-3 taken as +: a bracket would hide it
        g = examples.abs_vjp(inputs, cotangents)[0].copy()
        g[0] = -g[0]
        return (g,)

    result = check_vjp_matches_oracle(case_of(variant(examples.absolute, vjp=flipped_at_the_first), x))
    assert result.verdict is Verdict.FAIL and result.tensors[0].worst[0].index == (0,)


def _tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return ((1 - np.tanh(x) ** 2) * g,)


@pytest.mark.parametrize("size", [None, 10**5])
def test_without_a_reference_a_float32_forward_is_held_to_itself_in_float64(size):
    # The backward is judged against the float64 forward alone: a forward that branches on
    # the dtype (tanh(2x) in float32), with a backward right for the float64 one, passed
    # every check; so did a float32 answer cached by shape. A right one passes, and so does
    # every float64 case (nothing to hold it to but itself)
    def branching(x):
        return np.tanh(2 * x) if x.dtype == np.float32 else np.tanh(x)

    cache = {}

    def cached(x):
        return cache.setdefault(x.shape, np.tanh(x)) if x.dtype == np.float32 else np.tanh(x)

    def results(forward):
        m = Mapping("tanh", forward, _tanh_vjp, inputs=[Input((4, 5))], dtypes=("float32", "float64"))
        return [r for r in check_mapping(m, size=size) if r.check == "forward_matches_reference"]

    assert all(r.verdict is (Verdict.FAIL if "float32" in r.case else Verdict.SKIP) for r in results(branching))
    if size is None:  # (two cases of one shape: the second gets the first's answer)
        assert any(r.verdict is Verdict.FAIL for r in results(cached))
    right = results(np.tanh)
    assert all(r.verdict is (Verdict.PASS if "float32" in r.case else Verdict.SKIP) for r in right)
    assert any(r.verdict is Verdict.PASS for r in right)
