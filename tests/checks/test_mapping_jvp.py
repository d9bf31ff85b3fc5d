"""Beyond the VJP: the JVP against the oracle, the exact transpose identity between a
mapping's own JVP and VJP, and (opt-in) the backward of the backward."""

import pytest

from harness.checks.mapping_jvp import check_jvp_matches_oracle, check_jvp_vjp_transpose, check_second_order
from harness.core.mapping import NotOffered
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import trial_for, variant


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
