"""Metamorphic properties that need no oracle: the batch gradient is the mean of the
per-sample gradients, and neither permuting nor duplicating the batch changes it."""

from __future__ import annotations

import numpy as np

from harness.checks.compare import compare_gradients, failing, unjudged
from harness.checks.trial import Trial, flat, shapes_ok, subcase
from harness.core import hints
from harness.core.results import CheckResult, Verdict


def _compare_property(trial: Trial, name: str, law: str, got_pairs, want_pairs) -> CheckResult:
    if not (shapes_ok(got_pairs, trial.case) and shapes_ok(want_pairs, trial.case)):
        return trial.result(name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    dtype = trial.judged_dtype(flat(got_pairs) + flat(want_pairs))
    # Both sides carry rounding and either may pick any subgradient at a kink: twice the bracket.
    reports = compare_gradients(got_pairs, trial.expected, dtype=dtype, comparison="property", center=want_pairs,
                                radius_factor=2.0)
    wrong = failing(reports)
    if wrong:
        return trial.result(name, Verdict.FAIL, f"{law} fails in {', '.join(t.name for t in wrong)}", tensors=reports,
                            hint=hints.property_hint(name, reports))
    unsure = unjudged(reports)
    if unsure:
        return trial.result(name, Verdict.INCONCLUSIVE, f"{law}: cannot be judged in {', '.join(t.name for t in unsure)}: "
                                                        f"{unsure[0].message}", tensors=reports)
    return trial.result(name, Verdict.PASS, tensors=reports)


def check_batch_gradient_is_mean_of_samples(trial: Trial) -> CheckResult:
    """The batch gradient equals the mean of the single-sample gradients."""
    name = "batch_gradient_is_mean_of_samples"
    case = trial.case
    if case.batch < 2:
        return trial.result(name, Verdict.SKIP, "batch of 1")
    first, _ = trial.first
    working = case.copy()
    prepared = trial.prepare(working)  # one prepare: the samples share the parameters
    singles = [trial.step(prepared, subcase(working, slice(n, n + 1))) for n in range(case.batch)]
    if not all(shapes_ok(s.grads, case) for s in [first, *singles]):
        return trial.result(name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    mean = [
        (sum(np.asarray(s.grads[i][0], np.float64) for s in singles) / case.batch,
         sum(np.asarray(s.grads[i][1], np.float64) for s in singles) / case.batch)
        for i in range(len(first.grads))
    ]
    return _compare_property(trial, name, "mean of per-sample gradients == batch gradient", first.grads, mean)


def check_batch_permutation_invariant(trial: Trial) -> CheckResult:
    """Permuting the batch (x and y together) leaves the gradient unchanged."""
    name = "batch_permutation_invariant"
    case = trial.case
    if case.batch < 2:
        return trial.result(name, Verdict.SKIP, "batch of 1")
    first, _ = trial.first
    order = np.random.default_rng((case.seed or 0) + 31).permutation(case.batch)
    if np.all(order == np.arange(case.batch)):
        order = np.roll(order, 1)
    permuted = trial.call(subcase(case, order))
    return _compare_property(trial, name, "gradient of the permuted batch == gradient of the batch", permuted.grads, first.grads)


def check_batch_duplication_invariant(trial: Trial) -> CheckResult:
    """Every sample taken twice leaves the (mean) gradient unchanged."""
    name = "batch_duplication_invariant"
    case = trial.case
    first, _ = trial.first
    # Each sample next to its copy (0, 0, 1, 1, ...): the order of the batch is kept,
    # so this law and permutation invariance fail for different mistakes.
    doubled = trial.call(subcase(case, np.repeat(np.arange(case.batch), 2)))
    return _compare_property(trial, name, "gradient of every sample taken twice == gradient of the batch", doubled.grads,
                             first.grads)


PROPERTY_CHECKS = (check_batch_gradient_is_mean_of_samples, check_batch_permutation_invariant, check_batch_duplication_invariant)
