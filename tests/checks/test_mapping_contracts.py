"""Each contract check catches the mistake it names, on the raw answer, and passes the
correct mapping."""

import numpy as np
import pytest

from harness.checks.mapping_contracts import (
    check_deterministic,
    check_gradient_dtypes,
    check_gradient_shapes,
    check_inputs_not_mutated,
    check_no_gradient_for_integer_inputs,
    check_no_state_between_calls,
    check_outputs_are_finite,
)
from harness.core.mapping import Input, Mapping
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import trial_for, variant

CONTRACTS = [check_outputs_are_finite, check_gradient_shapes, check_gradient_dtypes, check_inputs_not_mutated,
             check_deterministic, check_no_state_between_calls, check_no_gradient_for_integer_inputs]


@pytest.mark.parametrize("mapping", [examples.softmax, examples.embedding, examples.relu], ids=lambda m: m.name)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_correct_mappings_keep_every_contract(mapping, dtype):
    trial = trial_for(mapping, dtype)
    for check in CONTRACTS:
        assert check(trial).ok, check(trial).describe()


def test_a_naive_softmax_overflowing_at_large_logits_is_not_finite():
    def naive(x):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(x)
            return e / e.sum(-1, keepdims=True)

    m = variant(examples.softmax, forward=naive, inputs=[Input((4, 6))])
    trial = trial_for(m, "float32", "large")
    trial.case.inputs[0][0, 0] = 100.0  # e^100 overflows float32, not float64
    result = check_outputs_are_finite(trial)
    assert result.verdict is Verdict.FAIL and "non-finite elements where the float64 forward is finite" in result.message


def test_a_float32_exp_that_overflows_where_float64_exceeds_float32_too_is_not_flagged():
    m = Mapping("exp", np.exp, lambda i, c: (np.exp(i[0]) * c[0],), inputs=[Input((3,))], dtypes=("float32",))
    trial = trial_for(m, "float32")
    trial.case.inputs[0][0] = 89.0  # e^89 = 4.5e38 > float32's 3.4e38: inf is the rounded truth
    with np.errstate(over="ignore"):
        assert check_outputs_are_finite(trial).ok


def test_a_nan_from_the_branch_not_taken_is_not_finite():
    def sqrt_relu(x):
        return np.where(x > 0, np.sqrt(np.abs(x)), 0.0)

    def vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.where(x > 0, g * 0.5 / np.sqrt(x), 0.0),)  # sqrt of negatives: NaN * 0 is NaN

    m = Mapping("sqrt relu", sqrt_relu, vjp, inputs=[Input((3, 4))])
    m.vjp = lambda i, c: (vjp(i, c)[0] + np.where(i[0] > 0, 0, np.nan),)
    result = check_outputs_are_finite(trial_for(m))
    assert result.verdict is Verdict.FAIL and "non-finite" in result.message and "branch np.where did not take" in result.hint


@pytest.mark.parametrize("bad_vjp, words, hint", [
    (lambda i, c: (examples.matmul_vjp(i, c)[0].T.copy(), examples.matmul_vjp(i, c)[1]), "has shape (4, 3), expected (3, 4)", "transpose"),
    (lambda i, c: (examples.matmul_vjp(i, c)[0].reshape(4, 3), examples.matmul_vjp(i, c)[1]), "has shape (4, 3)", "transpose"),
    (lambda i, c: (examples.matmul_vjp(i, c)[0], None), "no gradient for input 1", ""),
    (lambda i, c: (examples.matmul_vjp(i, c)[0],), "returned 1 entries, expected one per input (2)", ""),
])
def test_gradients_shaped_otherwise_than_their_inputs_are_caught(bad_vjp, words, hint):
    result = check_gradient_shapes(trial_for(variant(examples.matmul, vjp=bad_vjp)))
    assert result.verdict is Verdict.FAIL and words in result.message and hint in result.hint


def test_a_bias_gradient_not_summed_over_the_batch_is_caught():
    def linear(x, b):
        return x + b

    m = Mapping("add bias", linear, lambda i, c: (c[0], c[0]), inputs=[Input((5, 3)), Input((3,))])
    result = check_gradient_shapes(trial_for(m))
    assert "the gradient of input 1 has shape (5, 3), expected (3,)" in result.message and "broadcast" in result.hint


def test_a_float32_gradient_for_float64_inputs_is_caught_by_dtype():
    m = variant(examples.relu, vjp=lambda i, c: (examples.relu_vjp(i, c)[0].astype(np.float32),))
    result = check_gradient_dtypes(trial_for(m, "float64"))
    assert result.verdict is Verdict.FAIL and "the gradient of input 0 is float32" in result.message


def test_mutating_an_input_or_a_cotangent_is_caught():
    def inplace_relu_vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        x[x < 0] = 0  # the classic in-place activation
        g *= x > 0
        return (g,)

    result = check_inputs_not_mutated(trial_for(variant(examples.relu, vjp=inplace_relu_vjp)))
    assert result.verdict is Verdict.FAIL
    assert "input 0 by the vjp" in result.message and "cotangent 0 by the vjp" in result.message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [None, 10**4], ids=["small", "probed"])
def test_a_forward_that_writes_into_its_input_is_caught_and_the_case_stays_as_drawn(dtype, size):
    # The oracle's forward is the mapping's own: it once ran on the case's very arrays
    # (float64 ones are not converted, so not copied), so an in-place relu rewrote the case
    # itself, every later copy was of the rewritten case, and inputs_not_mutated passed
    from harness.checks.mapping_runner import run_mapping_checks
    from harness.core.mapping_cases import sample_cases

    def inplace_forward(x):
        np.maximum(x, 0, out=x)  # the classic in-place activation
        return x

    def inplace_indices(weight, indices):
        out = examples.embedding_forward(weight, indices)
        indices[...] = 0
        return out

    for mapping, forward in ((examples.relu, inplace_forward), (examples.embedding, inplace_indices)):
        bad = variant(mapping, forward=forward)
        for case in sample_cases(bad, dtype, size=size)[:2]:
            drawn = [x.copy() for x in case.inputs]
            results = {r.check: r for r in run_mapping_checks(bad, case)}
            mutated = results["inputs_not_mutated"]
            assert mutated.verdict is Verdict.FAIL and "by the forward" in mutated.message, mutated.describe()
            assert all(np.array_equal(a, b) for a, b in zip(case.inputs, drawn)), "the case was modified"


def test_a_call_writing_into_an_earlier_calls_arrays_is_caught():
    # A forward keeping the last caller's input as scratch for the next call, a VJP zeroing
    # the last caller's cotangent: each call leaves its own arrays alone, the next one does not
    kept = {}

    def forward(x):
        if "x" in kept and kept["x"].shape == x.shape:
            np.tanh(x, out=kept["x"])
        kept["x"] = x
        return np.tanh(x)

    def vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        if "g" in kept and kept["g"].shape == g.shape:
            kept["g"][...] = 0
        kept["g"] = g
        return ((1 - np.tanh(x) ** 2) * g,)

    tanh = Mapping("tanh", np.tanh, lambda i, c: ((1 - np.tanh(i[0]) ** 2) * c[0],), inputs=[Input((4, 5))])
    assert check_inputs_not_mutated(trial_for(tanh)).verdict is Verdict.PASS
    result = check_inputs_not_mutated(trial_for(variant(tanh, forward=forward, vjp=vjp)))
    assert result.verdict is Verdict.FAIL, result.describe()
    assert "input 0 by the forward" in result.message and "cotangent 0 by the vjp" in result.message


def test_a_mutation_past_the_first_elements_of_a_large_input_is_caught():
    # (equality is decided on the first elements first: those agree here, and the last one differs)
    def touches_the_last(inputs, cotangents):
        (x,) = inputs
        grads = examples.relu_vjp(inputs, cotangents)
        x.flat[-1] += 1.0
        return grads

    big = Mapping("relu", examples.relu_forward, examples.relu_vjp, inputs=[Input((100, 100))], dtypes=("float64",))
    result = check_inputs_not_mutated(trial_for(variant(big, vjp=touches_the_last)))
    assert result.verdict is Verdict.FAIL and "input 0 by the vjp (1 elements changed)" in result.message, result.describe()


def test_same_is_equality_of_every_element_with_nans_in_the_same_places():
    from harness.checks.mapping_contracts import same

    x = np.random.default_rng(0).standard_normal((50, 40))
    y = x.copy()
    assert same(x, y) and same(x.T, y.T)
    y[-1, -1] += 1.0  # past the first elements
    assert not same(x, y) and not same(x.T, y.T)
    x[0, :3] = y[0, :3] = np.nan  # NaN in the first elements of both: not told apart there
    y[-1, -1] = x[-1, -1]
    assert same(x, y)
    y[0, 0] = 0.0
    assert not same(x, y)


def test_randomness_and_reduction_order_are_told_apart():
    noisy = variant(examples.relu, vjp=lambda i, c: (examples.relu_vjp(i, c)[0] + 1e-3 * np.random.rand(*i[0].shape),))
    result = check_deterministic(trial_for(noisy))
    assert result.verdict is Verdict.FAIL and "beyond rounding" in result.message

    def reordered_vjp(inputs, cotangents):  # a sum in a random order (atomics on a GPU)
        (x,), (g,) = inputs, cotangents
        s = examples.softmax_forward(x)
        order = np.random.permutation(x.shape[-1])
        dot = np.sum((g * s)[..., order], axis=-1, keepdims=True)
        return (s * (g - dot),)

    m = variant(examples.softmax, vjp=reordered_vjp, inputs=[Input((64, 512))])
    result = check_deterministic(trial_for(m))
    if result.verdict is Verdict.FAIL:  # the permutation may happen to keep every rounding
        assert "at the level of rounding" in result.message and "nondeterminism" in result.hint
    declared = variant(m, nondeterminism=1e-12)
    assert check_deterministic(trial_for(declared)).ok


def test_state_kept_between_calls_is_caught():
    kept = {}

    def accumulating_vjp(inputs, cotangents):  # gradients accumulated and never zeroed
        g = examples.relu_vjp(inputs, cotangents)[0]
        kept["grad"] = kept.get("grad", 0) + g
        return (kept["grad"],)

    result = check_no_state_between_calls(trial_for(variant(examples.relu, vjp=accumulating_vjp)))
    assert result.verdict is Verdict.FAIL and "A's answer changed" in result.message

    cache = {}

    def cached_vjp(inputs, cotangents):  # keyed by shape: the next input of that shape gets the old answer
        key = inputs[0].shape
        if key not in cache:
            cache[key] = examples.relu_vjp(inputs, cotangents)
        return cache[key]

    result = check_no_state_between_calls(trial_for(variant(examples.relu, vjp=cached_vjp)))
    assert result.verdict is Verdict.FAIL and "equals A's bit for bit" in result.message


def test_a_gradient_for_integer_indices_is_caught():
    def vjp(inputs, cotangents):
        dw, _ = examples.embedding_vjp(inputs, cotangents)
        return dw, np.zeros(inputs[1].shape)  # a zero "gradient" for the indices

    result = check_no_gradient_for_integer_inputs(trial_for(variant(examples.embedding, vjp=vjp)))
    assert result.verdict is Verdict.FAIL and "input 1 (int64) got a float64 gradient" in result.message
    assert check_no_gradient_for_integer_inputs(trial_for(examples.relu)).verdict is Verdict.SKIP


def test_a_linear_map_answering_the_same_for_other_inputs_is_not_blamed_for_state():
    # the gradient of a sum does not depend on its input: B's answer may well be A's again
    total = Mapping("sum", lambda x: np.asarray(x.sum()), lambda i, c: (np.full(i[0].shape, c[0]),), inputs=[Input((1, 5))])
    assert check_no_state_between_calls(trial_for(total)).verdict is Verdict.PASS
    cache = {}

    def cached_vjp(inputs, cotangents):  # keyed by shape: wrong for B, whose cotangent differs
        return cache.setdefault(inputs[0].shape, (np.full(inputs[0].shape, cotangents[0]),))

    result = check_no_state_between_calls(trial_for(variant(total, vjp=cached_vjp)))
    assert result.verdict is Verdict.FAIL and "B's own is another" in result.message


def test_integer_inputs_of_the_other_call_stay_in_their_declared_range():
    def pick(weights, labels):
        if labels.min() < 0 or labels.max() >= weights.shape[0]:
            raise IndexError(f"labels {labels} outside [0, {weights.shape[0]})")
        return weights[labels]

    def pick_vjp(inputs, cotangents):
        weights, labels = inputs
        grad = np.zeros_like(weights)
        np.add.at(grad, labels, cotangents[0])
        return grad, None

    m = Mapping("pick", pick, pick_vjp, inputs=[Input((4, 2)), Input((6,), kind="int", high=4)])
    for check in (check_no_state_between_calls, check_deterministic):
        assert check(trial_for(m)).verdict is Verdict.PASS
