"""VJP probes at any size: a correct float32 or float64 mapping passes at 10, 10^3 and
10^6 elements, a wrong one fails at each, and a failing probe is bisected to an input
and an index; ties routed to every element are caught by the all-ones direction."""

import numpy as np
import pytest

from harness.checks.mapping_probes import check_vjp_probes
from harness.checks.mapping_trial import PROBES, MappingTrial
from harness.core.mapping import Input, Mapping
from harness.core.mapping_cases import sample_cases
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import case_of, trial_for, variant


def tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - np.tanh(x) ** 2),)


def one_element_off(inputs, cotangents):
    g = tanh_vjp(inputs, cotangents)[0].copy()
    g.flat[g.size // 3] += 0.5 * np.abs(g).max()  # one element, by half the largest gradient
    return (g,)


def float32_inside(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (tanh_vjp((x.astype(np.float32),), (g.astype(np.float32),))[0].astype(x.dtype),)


def at_size(vjp, size, dtype):
    m = Mapping("tanh", np.tanh, vjp, inputs=[Input((size,))], dtypes=(dtype,))
    return check_vjp_probes(MappingTrial(m, sample_cases(m, dtype, size=size)[0]))


@pytest.mark.parametrize("size", [10, 1000, 10**6])
def test_the_same_tolerance_is_right_from_ten_to_a_million_elements(size):
    for dtype in ("float32", "float64"):
        result = at_size(tanh_vjp, size, dtype)
        assert result.verdict is Verdict.PASS, result.describe()
    result = at_size(one_element_off, size, "float32")
    assert result.verdict is Verdict.FAIL and f"input 0 [{size // 3}]" in result.message  # bisected to it
    assert result.tensors[0].worst[0].index == (size // 3,)
    result = at_size(float32_inside, size, "float64")  # float32 rounding where float64 is asked for
    assert result.verdict is Verdict.FAIL


def test_a_softmax_missing_its_off_diagonal_term_fails_at_a_million_elements():
    def diagonal_only(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        s = examples.softmax_forward(x)
        return (s * (1 - s) * g,)

    m = variant(examples.softmax, vjp=diagonal_only, inputs=[Input((1000, 1000))], dtypes=("float32",))
    result = check_vjp_probes(MappingTrial(m, sample_cases(m, "float32", size=10**6)[0]))
    assert result.verdict is Verdict.FAIL and "bisection localises it to input 0" in result.message


def test_routing_the_gradient_to_every_tied_element_is_caught_by_the_all_ones_direction():
    def to_every_tie(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return ((x == x.max(-1, keepdims=True)) * g[..., None],)

    m = variant(examples.maximum, vjp=to_every_tie)
    trial = trial_for(m, "float64", "ties")
    result = check_vjp_probes(trial)
    assert result.verdict is Verdict.FAIL and "the all-ones direction" in result.message
    assert "every tied element" in result.hint  # no element alone is wrong
    assert check_vjp_probes(trial_for(examples.maximum, "float64", "ties")).ok  # the first of a tie: valid


def test_overlapping_max_pool_windows_with_ties_pass_with_the_first_element_convention():
    for dtype in ("float32", "float64"):
        assert check_vjp_probes(trial_for(examples.max_pool1d, dtype, "ties")).ok


def test_a_misshapen_gradient_is_left_to_gradient_shapes():
    m = variant(examples.relu, vjp=lambda i, c: (examples.relu_vjp(i, c)[0].T,))
    assert check_vjp_probes(trial_for(m)).verdict is Verdict.SKIP


def test_a_softmax_whose_gradient_is_all_below_float64s_range_is_judged_zero_not_an_error():
    # logits 1e3 apart: every derivative underflows to 0 (once a ZeroDivisionError in the report)
    x = np.array([[0.0, 1000.0, -2000.0, 3000.0], [500.0, -700.0, 1500.0, 0.0]])
    result = check_vjp_probes(case_of(variant(examples.softmax, reference=None), x))
    assert result.verdict is Verdict.PASS, result.describe()
    # the example's reference (no max trick) overflows there: its oracle cannot judge
    result = check_vjp_probes(case_of(examples.softmax, x))
    assert result.verdict is Verdict.INCONCLUSIVE, result.describe()


def test_a_probe_is_held_against_the_largest_derivative_probed_as_an_element_against_its_tensor():
    # tanh from its output at |x| = 17: the all-ones probe cancels to 5e-14 between two
    # elements of 3e-13, each carrying its output's rounding; other probes do not cancel
    def tanh_from_output(inputs, cotangents):
        y = np.tanh(inputs[0])
        return (cotangents[0] * (1 - y * y),)

    m = Mapping("tanh", np.tanh, tanh_from_output, inputs=[Input((4,))])
    x = np.array([-17.0, 17.0, -40.0, 40.0])
    assert check_vjp_probes(case_of(m, x)).verdict is Verdict.PASS
    zero = variant(m, vjp=lambda i, c: (np.zeros_like(i[0]),))
    assert check_vjp_probes(case_of(zero, x)).verdict is Verdict.FAIL


def test_probes_no_tolerance_can_judge_make_the_check_inconclusive_never_a_pass():
    def sigmoid(x):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))

    def from_output(inputs, cotangents):
        s = sigmoid(inputs[0])
        return (cotangents[0] * s * (1 - s),)

    m = Mapping("sigmoid", sigmoid, from_output, inputs=[Input((4,))], dtypes=("float32",))
    x = np.array([17.0, 20.0, 30.0, 40.0])  # every derivative below float32's eps |c|; 0 at 17
    result = check_vjp_probes(case_of(m, x, dtype="float32"))
    assert result.verdict is Verdict.INCONCLUSIVE and "cannot be judged in float32" in result.message
    zero = variant(m, vjp=lambda i, c: (np.zeros_like(i[0]),))
    assert check_vjp_probes(case_of(zero, x, dtype="float32")).verdict is Verdict.INCONCLUSIVE


def test_relu_probes_at_a_million_elements_take_the_small_steps_first_once_needed_and_still_catch_wrong_vjps():
    # relu's usual tableau never resolves a probe over a million kinks: once the JVP's
    # tangent needed them, the steps below the kinks' spacing are tried first (2 evaluations
    # a probe, not 3 + 2); a float32 gradient wrong only next to the kink still fails
    relu = Mapping("relu", examples.relu_forward, examples.relu_vjp, examples.relu_jvp, inputs=[Input((1000, 1000))],
                   dtypes=("float32", "float64"))

    def late(inputs, cotangents):  # relu'(x) = 0 up to 1e-3
        (x,), (g,) = inputs, cotangents
        return (np.where(x > 1e-3, g, 0).astype(x.dtype),)

    def early(inputs, cotangents):  # relu'(x) = 1 from -1e-3
        (x,), (g,) = inputs, cotangents
        return (np.where(x >= -1e-3, g, 0).astype(x.dtype),)

    for dtype in ("float32", "float64"):
        trial = MappingTrial(relu, sample_cases(relu, dtype, size=10**6)[0])
        result = check_vjp_probes(trial)
        assert result.verdict is Verdict.PASS, result.describe()
    # float64: the tangent's tableau stops at 3 levels (its error is far from resolving the
    # probe there: kinks), then 2 small steps, then the complex step along it (kept) and
    # along each of the other PROBES - 1 (random) directions
    assert trial.differentiator.evaluations == 3 + 2 + 1 + (PROBES - 1), trial.differentiator.evaluations
    trial = MappingTrial(relu, sample_cases(relu, "float32", size=10**6)[0])
    assert check_vjp_probes(trial).verdict is Verdict.PASS
    # 3 + 2 for the JVP's tangent, probed first (the JVP check reuses them; with random signs,
    # it is one of the PROBES probes), 2 for each of the other, random, directions
    assert trial.differentiator.evaluations == (3 + 2) + (PROBES - 1) * 2
    for wrong in (late, early):
        result = check_vjp_probes(MappingTrial(variant(relu, vjp=wrong), trial.case))
        assert result.verdict is Verdict.FAIL, (wrong.__name__, result.describe())


def _positive_from(x, start: int) -> int:
    """The first flat index from ``start`` on where ``x`` is positive (relu's gradient there is not 0)."""
    return start + int(np.argmax(x.reshape(-1)[start:] > 0))


def _one_sign_flipped(k: int):
    """relu's VJP with the sign of element ``k`` flipped."""
    def vjp(inputs, cotangents):
        g = examples.relu_vjp(inputs, cotangents)[0].copy()
        g.flat[k] = -g.flat[k]
        return (g,)
    return vjp


def test_a_vjp_only_relu_at_a_million_elements_is_judged_by_the_small_steps_bracket():
    # Without a JVP nothing else judges these: along a direction over a million elements
    # the usual steps cross thousands of kinks, and the bracket they gave (+-4 % of the
    # probe) passed a gradient 0.4 % too large and one with a single sign flipped
    relu = Mapping("relu", examples.relu_forward, examples.relu_vjp, inputs=[Input((1000, 1000))],
                   dtypes=("float32", "float64"))

    def too_large(inputs, cotangents):
        return ((examples.relu_vjp(inputs, cotangents)[0] * (1 + 2**-8)).astype(inputs[0].dtype),)

    for dtype in ("float32", "float64"):
        case = sample_cases(relu, dtype, size=10**6)[0]
        k = _positive_from(case.inputs[0], 123_456)  # (the flipped gradient is not 0)
        assert check_vjp_probes(MappingTrial(relu, case)).verdict is Verdict.PASS
        flipped = check_vjp_probes(MappingTrial(variant(relu, vjp=_one_sign_flipped(k)), case))
        assert flipped.verdict is Verdict.FAIL and f"input 0 [{k // 1000}, {k % 1000}]" in flipped.message, flipped.describe()
        if dtype == "float64":
            assert check_vjp_probes(MappingTrial(variant(relu, vjp=too_large), case)).verdict is Verdict.FAIL


def test_over_a_large_input_the_jvp_tangent_has_random_signs_and_counts_as_one_of_the_probes():
    # Past ELEMENTWISE_LIMIT the tangent is Rademacher signs times the spreads, like every
    # random direction, so the miss bound's m probes include it: PROBES probes in all, and
    # with probes=1 the tangent alone judges -- and still catches one flipped element
    relu = Mapping("relu", examples.relu_forward, examples.relu_vjp, examples.relu_jvp, inputs=[Input((100, 100))],
                   dtypes=("float64",))

    case = sample_cases(relu, "float64", size=10**4)[0]
    k = _positive_from(case.inputs[0], 4321)  # (the flipped gradient is not 0)
    one_sign_flipped = _one_sign_flipped(k)
    trial = MappingTrial(relu, case)
    (t,) = trial.tangents
    assert np.unique(np.abs(t)).size == 1 and 0.4 < np.mean(t > 0) < 0.6  # +-one spread, signs at random
    result = check_vjp_probes(trial)
    assert result.verdict is Verdict.PASS and result.message.startswith(f"{PROBES} probes"), result.describe()
    alone = MappingTrial(variant(relu, vjp=one_sign_flipped), case, probes=1)
    result = check_vjp_probes(alone)
    assert result.verdict is Verdict.FAIL and "along the JVP check's tangent direction" in result.message, result.describe()
    assert f"input 0 [{k // 100}, {k % 100}]" in result.message
    # a small case keeps its continuous tangent, probed besides the PROBES (and the all-ones direction)
    small = MappingTrial(examples.relu, sample_cases(examples.relu, "float64")[0])
    assert np.unique(np.abs(small.tangents[0])).size > 1
    assert check_vjp_probes(small).message.startswith(f"{PROBES + 2} probes")
