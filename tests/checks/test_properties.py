"""The metamorphic properties need no oracle: the batch gradient is the mean of the
per-sample gradients, and neither permuting nor duplicating the batch changes it. Each
catches the batch-handling bugs it is about, and no correct variant."""

import pytest

from harness.checks.properties import (
    check_batch_duplication_invariant,
    check_batch_gradient_is_mean_of_samples,
    check_batch_permutation_invariant,
)
from harness.checks.runner import run_check
from harness.checks.trial import Trial
from harness.core.cases import make_case
from harness.core.protocol import as_implementation
from harness.core.results import Verdict
from tests import corpus

MEAN, PERMUTATION, DUPLICATION = (check_batch_gradient_is_mean_of_samples, check_batch_permutation_invariant,
                                  check_batch_duplication_invariant)
F, P = Verdict.FAIL, Verdict.PASS


def _run(check, entry):
    return run_check(check, Trial(as_implementation(entry.impl), entry.case()))


def _entry(name):
    return next(e for e in corpus.BUGS if e.name == name)


@pytest.mark.parametrize(
    "name, verdicts",
    [
        # a reduction that is not the mean: per-sample answers are right, the batch's is not
        ("SumInsteadOfMean", (F, P, F)),
        ("MeanTakenTwice", (F, P, F)),
        # labels detached from their samples: the order of the batch matters
        ("LabelsMisaligned", (F, F, P)),
        # right for a batch grouped by class, as an unshuffled loader delivers it: only a shuffle shows it
        ("OneHotAssumesBatchSortedByClass", (P, F, P)),
        # a mean of micro-batch means: right until the batch no longer splits evenly
        ("MicroBatchMeansAveraged", (P, P, F)),
    ],
)
def test_each_property_catches_exactly_the_bugs_it_is_about(name, verdicts):
    entry = _entry(name)
    got = tuple(_run(check, entry).verdict for check in (MEAN, PERMUTATION, DUPLICATION))
    assert got == verdicts


def test_a_failure_states_the_law_names_the_tensors_and_the_likely_mistake():
    mean = _run(MEAN, _entry("SumInsteadOfMean"))
    assert mean.message == "mean of per-sample gradients == batch gradient fails in layer 0 W, layer 0 b, layer 1 W, layer 1 b"
    assert mean.hint.startswith("the batch reduction is not a mean")
    permuted = _run(PERMUTATION, _entry("OneHotAssumesBatchSortedByClass"))
    assert permuted.message.startswith("gradient of the permuted batch == gradient of the batch fails in ")
    assert "samples paired with the wrong labels?" in permuted.hint
    doubled = _run(DUPLICATION, _entry("MicroBatchMeansAveraged"))
    assert doubled.message.startswith("gradient of every sample taken twice == gradient of the batch fails in ")
    assert "a fixed batch size?" in doubled.hint
    assert doubled.repro and doubled.tensors


@pytest.mark.parametrize("entry", corpus.CORRECT, ids=lambda e: e.name)
@pytest.mark.parametrize("check", [MEAN, PERMUTATION, DUPLICATION], ids=lambda c: c.__name__)
def test_no_correct_variant_breaks_a_property(entry, check):
    from harness.core.registry import resolve

    result = run_check(check, Trial(resolve(entry.impl), entry.case()))
    assert result.verdict is Verdict.PASS, result.describe()


def test_a_batch_of_one_has_nothing_to_average_or_permute_but_can_be_doubled():
    one = corpus.Entry(corpus.SumInsteadOfMean(), {"spec": corpus.RELU, "batch": 1, "seed": 1}, ())
    assert _run(MEAN, one).verdict is Verdict.SKIP and _run(MEAN, one).message == "batch of 1"
    assert _run(PERMUTATION, one).verdict is Verdict.SKIP
    assert _run(DUPLICATION, one).verdict is Verdict.FAIL  # a sum doubles with the batch


def test_wrong_shapes_are_left_to_gradient_shapes():
    case = make_case(corpus.RELU, 4, seed=1)
    for check in (MEAN, PERMUTATION, DUPLICATION):
        result = run_check(check, Trial(as_implementation(corpus.WeightGradTransposed()), case))
        assert result.verdict is Verdict.SKIP and "see gradient_shapes" in result.message
