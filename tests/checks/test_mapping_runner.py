"""The mapping checks' engine: every check on every sample case in every dtype, an
ERROR for a mapping that raises, a SKIP for what does not apply, never a silent pass."""

import numpy as np

from harness.checks.mapping_runner import MAPPING_CHECKS, check_mapping, mapping_cases, mapping_check_name
from harness.core.mapping import Input, Mapping
from harness.core.results import Verdict
from harness.mappings import examples


def test_the_check_names_are_the_contract():
    assert [mapping_check_name(c) for c in MAPPING_CHECKS] == [
        "derivatives_are_judged", "outputs_are_finite", "gradient_shapes", "gradient_dtypes", "inputs_not_mutated", "deterministic",
        "no_state_between_calls", "no_gradient_for_integer_inputs", "forward_matches_reference",
        "vjp_matches_oracle", "vjp_probes", "jvp_matches_oracle", "jvp_vjp_transpose", "second_order"]


def test_every_check_runs_on_every_case_in_every_declared_dtype():
    results = check_mapping(examples.softmax)
    per_case = len(MAPPING_CHECKS)
    assert len(results) == per_case * len(mapping_cases(examples.softmax))
    assert all(r.ok for r in results) and {r.case.split()[-2] for r in results} >= {"float32", "float64"}
    assert all(r.seconds >= 0 for r in results)


def _wrong_tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - x**2),)  # tanh' is 1 - tanh(x)^2


def test_a_run_that_judges_no_derivative_is_inconclusive_not_a_pass():
    """No vjp and no jvp: only the forward's contracts could run (every result was PASS or
    SKIP, exit 0, before). A wrong vjp on inputs of no element: right there, vacuously
    (PASS before). Both INCONCLUSIVE now, saying why; the same vjp on one element FAILs."""
    forward_only = check_mapping(Mapping("forward only", np.tanh, None, inputs=[Input((3, 4))]), dtype="float64")
    empty = check_mapping(Mapping("empty", np.tanh, _wrong_tanh_vjp, inputs=[Input((0, 4))]), dtype="float64")
    for results, words in ((forward_only, "gives neither a vjp nor a jvp"), (empty, "no float input elements")):
        judged = [r for r in results if r.check == "derivatives_are_judged"]
        assert judged and all(r.verdict is Verdict.INCONCLUSIVE and words in r.message for r in judged)
        assert not all(r.ok for r in results)
    one = check_mapping(Mapping("one", np.tanh, _wrong_tanh_vjp, inputs=[Input((1, 1))]), dtype="float64")
    assert any(r.verdict is Verdict.FAIL for r in one)
    assert all(r.verdict is Verdict.PASS for r in one if r.check == "derivatives_are_judged")


def test_a_dtype_not_declared_is_a_skip_saying_why():
    (result,) = check_mapping(Mapping("m", np.tanh, inputs=[Input((2,))]), dtype="float32")
    assert result.verdict is Verdict.SKIP and "dtype float32 not declared" in result.message


def test_a_degenerate_shape_the_forward_refuses_is_left_out_not_failed():
    results = check_mapping(examples.max_pool1d, dtype="float64")
    skipped = [r for r in results if r.check == "applicable"]
    assert len(skipped) == 1 and "does not accept this shape" in skipped[0].message and "width 1" in skipped[0].case


def test_a_mapping_that_raises_is_an_error_and_the_run_goes_on():
    def broken_vjp(inputs, cotangents):
        raise RuntimeError("no backward today")

    results = check_mapping(Mapping("m", np.tanh, broken_vjp, inputs=[Input((3,))]))
    errors = [r for r in results if r.verdict is Verdict.ERROR]
    assert errors and all("vjp raised RuntimeError: no backward today" in r.message for r in errors)
    assert any(r.check == "vjp_probes" for r in errors) and len(results) == len(MAPPING_CHECKS) * 3
