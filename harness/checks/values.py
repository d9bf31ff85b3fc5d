"""Value checks: the loss, every gradient element and dL/dx against the float64 oracle,
to the rounding of the dtype the implementation computes in."""

from __future__ import annotations

import math

import numpy as np

from harness.checks.compare import compare_elementwise, compare_gradients, failing, unjudged
from harness.checks.trial import Trial, flat, shapes_ok
from harness.core import hints
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import tolerance


def check_loss_matches_reference(trial: Trial) -> CheckResult:
    """The loss agrees with the float64 reference to the dtype's rounding."""
    name = "loss_matches_reference"
    result, _ = trial.first
    got = float(np.asarray(result.loss, np.float64).reshape(()))
    exp = trial.expected
    dtype = trial.judged_dtype([result.loss])
    report = compare_elementwise(np.float64(got), exp.loss, 0.0, exp.loss_scale, dtype=dtype, comparison="loss", name="loss")
    err, tol = abs(got - exp.loss), float(tolerance(dtype, "loss", exp.loss_scale))
    if report.verdict is Verdict.FAIL:
        ratio = got / exp.loss if exp.loss else math.inf
        return trial.result(
            name, Verdict.FAIL, f"loss={got:.12g}, but should be {exp.loss:.12g} (abs error {err:.3g} > tolerance {tol:.3g})",
            hint=hints.ratio_hint(np.array([ratio]), trial.case.batch) if np.isfinite(ratio) else "",
        )
    if report.verdict is Verdict.INCONCLUSIVE:
        return trial.result(name, Verdict.INCONCLUSIVE, f"loss={got:.12g}, expected {exp.loss:.12g}: {report.message}")
    return trial.result(name, Verdict.PASS, f"abs error {err:.3g} <= {tol:.3g}")


def check_gradients_match_reference(trial: Trial) -> CheckResult:
    """Every gradient element agrees with the reference backprop, to the dtype's
    rounding; at kinks, it lies in the bracket of one-sided derivatives."""
    name = "gradients_match_reference"
    result, _ = trial.first
    exp = trial.expected
    spec = trial.case.spec
    if not shapes_ok(result.grads, trial.case):
        return trial.result(name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    dtype = trial.judged_dtype(flat(result.grads))
    reports = compare_gradients(result.grads, exp, dtype=dtype)
    wrong = failing(reports)
    n_nondiff = sum(t.n_nondifferentiable for t in reports)
    note = f"; {n_nondiff} non-differentiable elements judged by their bracket" if n_nondiff else ""
    if wrong:
        total = sum(t.n_failed for t in wrong)
        float32_sized = dtype == "float64" and not failing(compare_gradients(result.grads, exp, dtype="float32"))
        return trial.result(
            name, Verdict.FAIL,
            f"{total} of {spec.n_params} gradient elements outside tolerance in {', '.join(t.name for t in wrong)}{note}",
            tensors=reports,
            hint=hints.gradient_hint(reports, flat(result.grads), flat(exp.center), trial.case.batch, spec.sizes[-1],
                                     float32_sized=float32_sized),
        )
    unsure = unjudged(reports)
    if unsure:
        total = sum(t.n_unjudged for t in unsure)
        return trial.result(
            name, Verdict.INCONCLUSIVE,
            f"{total} of {spec.n_params} gradient elements cannot be judged in {dtype} (in {', '.join(t.name for t in unsure)}): "
            f"{unsure[0].message.split(': ', 1)[-1]}; the others are within tolerance{note}",
            tensors=reports,
        )
    return trial.result(name, Verdict.PASS, f"all {spec.n_params} elements within tolerance{note}", tensors=reports)


def check_input_gradient(trial: Trial) -> CheckResult:
    """dL/dx (for implementations that declare ``input_grad``) agrees with the reference."""
    name = "input_gradient"
    if not trial.capabilities.input_grad:
        return trial.result(name, Verdict.SKIP, "the implementation does not declare input_grad")
    result, _ = trial.first
    exp = trial.expected
    if result.dx is None:
        return trial.result(name, Verdict.FAIL, "input_grad is declared, but the step returned no dx")
    if np.shape(result.dx) != trial.case.x.shape:
        return trial.result(name, Verdict.FAIL, f"dx has shape {np.shape(result.dx)}, expected {trial.case.x.shape}")
    report = compare_elementwise(result.dx, exp.dx_center, exp.dx_radius, exp.dx_scale,
                                 dtype=trial.judged_dtype([result.dx]), comparison="gradient", name="x",
                                 margin=0.0 if exp.dx_floor is None else exp.dx_floor)
    if report.verdict is Verdict.FAIL:
        ratios = np.asarray(result.dx, np.float64).ravel() / np.where(exp.dx_center == 0, np.nan, exp.dx_center).ravel()
        return trial.result(name, Verdict.FAIL, f"{report.n_failed} of {report.n_elements} elements of dx outside tolerance",
                            tensors=[report], hint=hints.ratio_hint(ratios, trial.case.batch))
    if report.verdict is Verdict.INCONCLUSIVE:
        return trial.result(name, Verdict.INCONCLUSIVE, f"dx: {report.message}", tensors=[report])
    return trial.result(name, Verdict.PASS, tensors=[report])


VALUE_CHECKS = (check_loss_matches_reference, check_gradients_match_reference, check_input_gradient)
