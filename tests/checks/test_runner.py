"""The checker catches real bugs with the right verdict, and flags no correct variant.

Every entry of ``tests/corpus.py`` is a realistic mistake; each must be caught by the
check that names it, on a small case and (where the bug shows there) at the seed's
784-500-10 size.
"""

import numpy as np
import pytest

from harness import resolve, run_checks
from harness.checks import ALL_CHECKS, Trial, run_check
from harness.checks.probes import check_gradient_probes
from harness.checks.values import check_gradients_match_reference
from harness.core.results import Verdict
from tests import corpus


def _by_check(results):
    return {r.check: r for r in results}


@pytest.mark.parametrize("entry", corpus.BUGS, ids=lambda e: e.name)
def test_each_bug_is_caught_by_its_check(entry):
    results = _by_check(run_checks(entry.impl, entry.case()))
    caught = results[entry.catches[0]]
    assert caught.verdict is Verdict.FAIL, caught.describe()
    where = "--case-file" if entry.transform else "--sizes"  # a transformed case is not rebuilt by its seed
    assert caught.repro.startswith(f"backprop-harness check --impl tests.corpus:{entry.name} {where}")
    assert caught.message
    for name in entry.must_pass:
        assert results[name].verdict is Verdict.PASS, results[name].describe()


@pytest.mark.parametrize("entry", [e for e in corpus.BUGS if e.only], ids=lambda e: e.name)
def test_bugs_only_one_check_can_see_are_caught_by_exactly_that_check(entry):
    results = run_checks(entry.impl, entry.case())
    assert {r.check for r in results if not r.ok} == {entry.catches[0]}, "\n".join(r.describe() for r in results if not r.ok)


@pytest.mark.parametrize("entry", [e for e in corpus.BUGS if e.also_at_seed_size], ids=lambda e: e.name)
def test_each_bug_is_caught_at_seed_size(entry):
    # the checks that name the bug, at 784-500-10 (397,510 parameters), batch 16
    checks = [c for c in ALL_CHECKS if c.__name__.removeprefix("check_") in entry.catches]
    results = run_checks(entry.impl, entry.seed_case(batch=16), checks=checks)
    assert any(r.verdict is Verdict.FAIL for r in results), "\n".join(r.describe() for r in results)


@pytest.mark.parametrize("entry", corpus.CORRECT, ids=lambda e: e.name)
def test_no_correct_variant_is_flagged(entry):
    results = _by_check(run_checks(entry.impl, entry.case()))
    for result in results.values():
        assert result.verdict in (Verdict.PASS, Verdict.SKIP), result.describe()
    for name in entry.must_pass:
        assert results[name].verdict is Verdict.PASS, results[name].describe()


@pytest.mark.parametrize("layer", [0, 1])
def test_single_wrong_element_in_seed_size_weights_is_found_and_named(layer):
    bug = corpus.SingleElementOff(layer=layer)
    case = corpus.Entry(bug, {}, ()).seed_case(batch=64)
    trial = Trial(resolve(bug), case)
    shape = case.params[layer][0].shape
    index = bug.index(shape)

    result = run_check(check_gradients_match_reference, trial)
    assert result.verdict is Verdict.FAIL
    failing = [t for t in result.tensors if t.verdict is Verdict.FAIL]
    assert [t.name for t in failing] == [f"layer {layer} W"]
    assert failing[0].n_failed == 1 and failing[0].worst[0].index == index
    assert "a single element is wrong" in result.hint

    probes = run_check(check_gradient_probes, trial)
    assert probes.verdict is Verdict.FAIL
    assert f"layer {layer} W [{index[0]}, {index[1]}]" in probes.message  # localised by bisection


def test_float32_rounding_passes_in_float32_and_fails_in_float64():
    # the same float32 computation is right when float32 was asked for ...
    right = corpus.Entry(corpus.Float32Backprop("f32"), corpus._c(corpus.DEEP_TANH), (), dtype="float32")
    assert _by_check(run_checks(right.impl, right.case()))["gradients_match_reference"].verdict is Verdict.PASS
    # ... and wrong when it hides inside float64 arrays
    wrong = corpus.Entry(corpus.Float32Inside(), corpus._c(corpus.DEEP_TANH), ())
    result = _by_check(run_checks(wrong.impl, wrong.case()))["gradients_match_reference"]
    assert result.verdict is Verdict.FAIL
    assert "float32 rounding" in result.hint


@pytest.mark.parametrize(
    "bug, words",
    [
        (corpus.SumInsteadOfMean(), "6 — the batch size?"),
        (corpus.MeanTakenTwice(), "1/6 — the batch size?"),
        (corpus.SignFlipped(), "sign flipped"),
        (corpus.BiasGradZero(), "only the bias gradients are wrong"),
        (corpus.ReluDerivativeIsActivation(), "confined to layer 0"),
    ],
)
def test_hints_name_the_pattern(bug, words):
    result = run_check(check_gradients_match_reference, Trial(resolve(bug), corpus.Entry(bug, corpus._c(corpus.RELU), ()).case()))
    assert words in result.hint


def test_transposed_square_weight_gradient_is_named():
    class Transposed(corpus.Backprop):  # a transposition that square layers' shapes cannot show
        def weight_grad(self, delta, a_prev):
            g = delta.T @ a_prev
            return g.T if g.shape[0] == g.shape[1] else g

    bug = Transposed()
    case = corpus.Entry(bug, corpus._c(corpus.SQUARE), ()).case()
    result = run_check(check_gradients_match_reference, Trial(resolve(bug), case))
    assert result.verdict is Verdict.FAIL and "layer 0 W equals the transpose" in result.hint


def test_wrong_slope_on_one_side_of_the_kink_fails_but_either_convention_passes():
    case = corpus.Entry(None, corpus._c(corpus.RELU, on_kinks=True), ()).case()
    trial = Trial(resolve(corpus.Backprop()), case)
    assert trial.expected.n_kink_units > 0
    for good in (corpus.Backprop(), corpus.ReluDerivativeOneAtZero()):
        result = run_check(check_gradients_match_reference, Trial(resolve(good), case))
        assert result.verdict is Verdict.PASS, result.describe()
        assert sum(t.n_nondifferentiable for t in result.tensors) > 0

    class HalfSlopeAtZero(corpus.Backprop):  # relu'(0) = 0.5 is inside [0, 1]: still valid
        def activation_derivative(self, name, z, a):
            if name == "relu":
                return np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0))
            return super().activation_derivative(name, z, a)

    class NegativeSideSlope(corpus.Backprop):  # relu'(z) = 0.1 for z <= 0: wrong left slope
        def activation_derivative(self, name, z, a):
            return np.where(z > 0, 1.0, 0.1) if name == "relu" else super().activation_derivative(name, z, a)

    assert run_check(check_gradients_match_reference, Trial(resolve(HalfSlopeAtZero()), case)).verdict is Verdict.PASS
    assert run_check(check_gradients_match_reference, Trial(resolve(NegativeSideSlope()), case)).verdict is Verdict.FAIL


def test_implementation_that_raises_is_an_error_not_a_crash():
    def broken(spec, params, x, y):
        raise RuntimeError("shape mismatch in layer 2")

    results = run_checks(broken, corpus.Entry(None, corpus._c(corpus.RELU), ()).case())
    ran = [r for r in results if r.verdict is not Verdict.SKIP]
    assert ran and all(r.verdict is Verdict.ERROR for r in ran)
    assert "RuntimeError: shape mismatch in layer 2" in results[0].message


def test_unsupported_case_is_skipped_with_the_reason():
    def only_tanh(spec, params, x, y):
        raise AssertionError("must not be called")

    only_tanh.activations = ("tanh", "identity")
    results = run_checks(only_tanh, corpus.Entry(None, corpus._c(corpus.RELU), ()).case())
    assert [r.verdict for r in results] == [Verdict.SKIP]
    assert "relu not supported" in results[0].message


def test_declared_nondeterminism_is_honoured():
    from harness.core.protocol import Capabilities, FunctionImplementation

    noisy = corpus.NoisyGradients()
    case = corpus.Entry(None, corpus._c(corpus.RELU), ()).case()
    strict = _by_check(run_checks(noisy, case))["deterministic"]
    impl = FunctionImplementation(noisy, "noisy-declared")
    impl.capabilities = Capabilities(nondeterminism=1e-2)
    tolerant = _by_check(run_checks(impl, case))["deterministic"]
    assert strict.verdict is Verdict.FAIL and tolerant.verdict is Verdict.PASS


def test_degenerate_cases_found_by_the_conformance_suite_do_not_false_alarm():
    from harness.core.cases import Case, make_case
    from harness.core.spec import NetworkSpec

    # all zeros: the true directional derivative is exactly 0, the complex step's is O(h^2)
    spec = NetworkSpec((1, 1, 1), ("identity", "identity"), "mse")
    zeros = Case(spec, ((np.zeros((1, 1)), np.zeros(1)),) * 2, np.zeros((1, 1)), np.zeros((1, 1)))
    # one class: every cross-entropy gradient is 0, so B's answer equals A's by right
    one_class = make_case(NetworkSpec((1, 1), ("identity",), "cross_entropy"), 1, seed=3)
    for case in (zeros, one_class):
        for result in run_checks(corpus.Backprop(), case):
            assert result.verdict in (Verdict.PASS, Verdict.SKIP), result.describe()
    # while a stale answer on a case where A and B differ is still caught
    stale = _by_check(run_checks(corpus.CachesForwardByShape(), corpus.Entry(None, corpus._c(corpus.RELU), ()).case()))
    assert stale["no_state_between_calls"].verdict is Verdict.FAIL
