"""Beyond the VJP: the JVP against the oracle, the exact transpose identity between a
mapping's own JVP and VJP, and (opt-in) the backward of the backward."""

import numpy as np
import pytest

from harness.checks.mapping_jvp import check_jvp_matches_oracle, check_jvp_vjp_transpose, check_second_order
from harness.checks.mapping_trial import MappingTrial
from harness.core.mapping import Input, Mapping, NotOffered
from harness.core.mapping_cases import sample_cases
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import case_of, trial_for, variant


@pytest.mark.parametrize("mapping", [examples.relu, examples.softmax, examples.matmul], ids=lambda m: m.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_correct_jvps_pass_both_checks(mapping, dtype):
    for label in ("random", "kinks", "large"):
        try:
            trial = trial_for(mapping, dtype, label)
        except StopIteration:
            continue
        for check in (check_jvp_matches_oracle, check_jvp_vjp_transpose):
            result = check(trial)
            assert result.verdict is Verdict.PASS, result.describe()


def test_a_wrong_jvp_fails_against_the_oracle_and_the_transpose_identity():
    def diagonal_only(inputs, tangents):
        (x,), (t,) = inputs, tangents
        s = examples.softmax_forward(x)
        return (s * (1 - s) * t,)

    trial = trial_for(variant(examples.softmax, jvp=diagonal_only))
    assert check_jvp_matches_oracle(trial).verdict is Verdict.FAIL
    assert check_jvp_vjp_transpose(trial).verdict is Verdict.FAIL


def test_the_transpose_identity_sees_an_inconsistency_far_below_any_difference_step():
    # a relative error of 1e-9 in float64: a central difference's own error at its best
    # step is about 1e-10 relative, Richardson's estimate here about 1e-12: both blurry;
    # the identity has no step at all
    off = variant(examples.matmul, jvp=lambda i, t: (examples.matmul_jvp(i, t)[0] * (1 + 1e-9),))
    result = check_jvp_vjp_transpose(trial_for(off))
    assert result.verdict is Verdict.FAIL and "off by" in result.message


def test_the_jvp_checks_skip_without_a_jvp_or_where_the_framework_offers_none():
    assert check_jvp_matches_oracle(trial_for(examples.absolute)).verdict is Verdict.SKIP

    def refuses(inputs, tangents):
        raise NotOffered("no forward-mode rule")

    result = check_jvp_vjp_transpose(trial_for(variant(examples.relu, jvp=refuses)))
    assert result.verdict is Verdict.SKIP and "no forward-mode rule" in result.message


def test_second_order_is_opt_in_and_skips_without_a_second_order_backward():
    assert "opt-in" in check_second_order(trial_for(examples.relu)).message
    result = check_second_order(trial_for(examples.relu, second_order=True))
    assert result.verdict is Verdict.SKIP and "gives no second-order backward" in result.message


def max_of_everything(x):
    return np.asarray(x.max())


def first_tie_jvp(inputs, tangents):
    (x,), (t,) = inputs, tangents
    return (np.asarray(t.flat[np.argmax(x)]),)


MAX = Mapping("max", max_of_everything, lambda i, c: (np.where(np.arange(i[0].size).reshape(i[0].shape) == np.argmax(i[0]),
                                                                c[0], 0.0),),
              first_tie_jvp, inputs=[Input((2, 3))])


def test_a_max_over_everything_takes_any_tied_tangent_and_no_sum_of_them():
    # a 0-d output: its bracket is [min, max] of the tied tangents (once lost to a NumPy scalar)
    three = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
    assert check_jvp_matches_oracle(case_of(MAX, three)).verdict is Verdict.PASS
    # the tangents of every tied element summed: outside [min, max] of a pair's tangents
    summed = variant(MAX, jvp=lambda i, t: (np.asarray(np.sum(t[0][i[0] == i[0].max()])),))
    pair = np.array([[1.0, 1.0, 0.0], [0.0, -1.0, 0.5]])
    assert check_jvp_matches_oracle(case_of(MAX, pair)).verdict is Verdict.PASS
    assert check_jvp_matches_oracle(case_of(summed, pair)).verdict is Verdict.FAIL


def test_a_relu_jvp_over_a_hundred_thousand_elements_passes_with_kinks_inside_the_steps():
    # (x + |x|) / 2 has no complex step: Richardson's first steps straddle the kink for a
    # few elements of 10^5, which are taken again with smaller steps
    relu = Mapping("relu", lambda x: (x + np.abs(x)) / 2, examples.relu_vjp, examples.relu_jvp,
                   inputs=[Input((100, 1000))])
    trial = MappingTrial(relu, sample_cases(relu, "float64", size=10**5)[0])
    result = check_jvp_matches_oracle(trial)
    assert result.verdict is Verdict.PASS, result.describe()
    halved = variant(relu, jvp=lambda i, t: (examples.relu_jvp(i, t)[0] * 0.5,))
    assert check_jvp_matches_oracle(MappingTrial(halved, trial.case)).verdict is Verdict.FAIL


def test_a_float32_relu_jvp_at_a_million_elements_is_judged_next_to_its_kinks_without_the_complex_step():
    # Richardson's first steps straddle the kink for about a thousand elements of 10^6;
    # steps below the kinks' spacing judge them (no complex step, no detection), and a JVP
    # wrong only there (0 < x < 1e-3 given relu'(x) = 0) still fails
    trial = MappingTrial(examples.relu, sample_cases(examples.relu, "float32", size=10**6)[0])
    result = check_jvp_matches_oracle(trial)
    assert result.verdict is Verdict.PASS, result.describe()
    assert trial.differentiator._complex is None  # the complex step was neither detected nor taken
    # (every value resolved then: a right JVP passes within the least tolerance, in a few passes)
    assert "within the least tolerance" in result.message, result.describe()

    def late(inputs, tangents):
        (x,), (t,) = inputs, tangents
        return (np.where(x > 1e-3, t, 0).astype(x.dtype),)

    wrong = check_jvp_matches_oracle(MappingTrial(variant(examples.relu, jvp=late), trial.case))
    assert wrong.verdict is Verdict.FAIL, wrong.describe()
    x = trial.case.inputs[0]
    assert wrong.tensors[0].n_failed == np.count_nonzero((x > 0) & (x <= 1e-3) & (trial.tangents[0] != 0))


def test_the_transpose_identity_cannot_judge_inner_products_below_its_tolerance():
    # softmax over logits 1e4 and gaps of hundreds: every derivative is ~1e-196, while a
    # correct backward rounds at eps |c|: the identity cannot tell right from wrong there
    x = np.array([[1551.8, -12577.7, 2002.2, 420.5]])
    result = check_jvp_vjp_transpose(case_of(examples.softmax, x))
    assert result.verdict is Verdict.INCONCLUSIVE and "cannot be judged" in result.message
    # all below the underflow floor, as the oracle's own zeros: judged (zero is right)
    result = check_jvp_vjp_transpose(case_of(examples.softmax, np.array([[3000.0, -12577.7, 2002.2]])))
    assert result.verdict is Verdict.PASS, result.describe()


def _square_not_analytic_at(k):
    """x ** 2 whose element ``k`` is computed from the real part alone: the same real
    values, an imaginary part of 0 there under the complex step (detection, along a few
    sparse directions, does not see one element of 1024)."""
    def forward(x):
        y = x * x
        y.reshape(-1)[k] = x.reshape(-1)[k].real ** 2
        return y
    return forward


def _dropping(k, of):
    def derivative(inputs, vectors):
        (x,), (v,) = inputs, vectors
        out = 2 * x * v
        out.reshape(-1)[k] = 0  # what the complex step says there
        return (out,)
    return derivative


def _twice(inputs, vectors):
    (x,), (v,) = inputs, vectors
    return (2 * x * v,)


def test_a_complex_step_wrong_on_one_element_neither_passes_a_wrong_vjp_nor_a_wrong_jvp():
    # Where the one-sided derivatives agree and the complex step does not, the complex
    # step is wrong there, not the element a kink: the bracket [0, 2x] passed a VJP and a
    # JVP of 0 there
    from harness.checks.mapping_probes import check_vjp_probes
    from harness.checks.mapping_values import check_vjp_matches_oracle

    k = 234
    right = Mapping("square", _square_not_analytic_at(k), _twice, _twice, inputs=[Input((32, 32))], dtypes=("float64",))
    trial = trial_for(right)
    assert trial.differentiator.complex_ok  # (detection passed it)
    for check in (check_vjp_matches_oracle, check_vjp_probes, check_jvp_matches_oracle, check_jvp_vjp_transpose):
        assert check(trial).verdict is Verdict.PASS, check(trial).describe()
    wrong_vjp = trial_for(variant(right, vjp=_dropping(k, "vjp")))
    result = check_vjp_matches_oracle(wrong_vjp)
    assert result.verdict is Verdict.FAIL and "[7, 10]" in result.describe(), result.describe()  # 234 = 7 * 32 + 10
    wrong_jvp = trial_for(variant(right, jvp=_dropping(k, "jvp")))
    result = check_jvp_matches_oracle(wrong_jvp)
    assert result.verdict is Verdict.FAIL and "1 JVP elements outside tolerance" in result.message, result.describe()


def test_a_jvp_whose_terms_cancel_is_judged_at_their_rounding_and_a_wrong_one_still_fails():
    # One pooling window (a single output element) whose tangents nearly cancel: J u =
    # -0.0022 from terms of about 0.3, which a right float64 JVP rounds at their size (2e-17
    # off). Neither |J u| nor the inputs' sensitivity (a linear map does not move with its
    # inputs) saw that, and the right JVP failed; the tangent's own rounding now counts
    from harness import ops
    from harness.checks.mapping_runner import check_mapping

    pool = ops.mapping("avg_pool2d", "numpy")
    window = [r for r in check_mapping(pool, dtype="float64", seed=2)
              if r.check == "jvp_matches_oracle" and r.case.startswith("a single window")]
    assert len(window) == 1 and window[0].verdict is Verdict.PASS, window[0].describe()

    def off(inputs, tangents, **params):  # 1e-11 relative: far below any difference step, far above rounding
        return tuple(y * (1 + 1e-11) for y in pool.jvp(inputs, tangents, **params))

    wrong = [r for r in check_mapping(variant(pool, jvp=off), dtype="float64", seed=2)
             if r.check == "jvp_matches_oracle" and r.case.startswith("a single window")]
    assert wrong[0].verdict is Verdict.FAIL, wrong[0].describe()


def test_over_a_large_input_a_right_jvp_passes_at_the_least_tolerance_and_one_element_off_still_fails():
    # once vjp_probes has kept the complex step along the tangent (float64 relu over 10^5
    # elements), a right JVP passes in a few passes over its elements; one element off by
    # 1e-12 of the largest is not within that least tolerance, and is judged elementwise
    from harness.checks.mapping_probes import check_vjp_probes

    trial = MappingTrial(examples.relu, sample_cases(examples.relu, "float64", size=10**5)[0])
    assert check_vjp_probes(trial).verdict is Verdict.PASS
    result = check_jvp_matches_oracle(trial)
    assert result.verdict is Verdict.PASS and "within the least tolerance" in result.message, result.describe()
    k = int(np.flatnonzero((trial.case.inputs[0] > 0) & (trial.tangents[0] != 0))[0])

    def one_off(inputs, tangents):
        out = examples.relu_jvp(inputs, tangents)[0]
        out.flat[k] += 1e-12 * np.max(np.abs(out))
        return (out,)

    wrong = MappingTrial(variant(examples.relu, jvp=one_off), trial.case)
    assert check_vjp_probes(wrong).verdict is Verdict.PASS
    result = check_jvp_matches_oracle(wrong)
    assert result.verdict is Verdict.FAIL and result.tensors[0].n_failed == 1, result.describe()
