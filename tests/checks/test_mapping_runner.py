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


def _one_buffer_tanh():
    """tanh that answers every call in one buffer of its own per shape and dtype."""
    buffers = {}

    def forward(x):
        out = buffers.setdefault((x.shape, x.dtype.str), np.empty(x.shape, x.dtype))
        return np.tanh(x, out=out)
    return forward


def _tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return ((1 - np.tanh(x) ** 2) * g,)


def test_a_forward_answering_in_one_buffer_of_its_own_neither_hides_a_wrong_vjp_nor_fails_a_right_one():
    # The oracle kept the forward's arrays: each later call overwrote the kept ones, every
    # difference quotient came out 0, and a zero VJP passed (a right one failed)
    def zero(inputs, cotangents):
        return (np.zeros_like(inputs[0]),)

    for size in (None, 10**4):
        wrong = Mapping("tanh, one buffer", _one_buffer_tanh(), zero, inputs=[Input((4, 5))], dtypes=("float32", "float64"))
        results = check_mapping(wrong, size=size)
        assert {r.check for r in results if r.verdict is Verdict.FAIL} >= {"vjp_probes"}, [r.describe() for r in results]
        right = Mapping("tanh, one buffer", _one_buffer_tanh(), _tanh_vjp, inputs=[Input((4, 5))], dtypes=("float32", "float64"))
        assert all(r.ok for r in check_mapping(right, size=size)), [r.describe() for r in check_mapping(right, size=size) if not r.ok]


def _tanh_jvp(inputs, tangents):
    (x,), (t,) = inputs, tangents
    return ((1 - np.tanh(x) ** 2) * t,)


def test_a_forward_answering_in_one_buffer_is_judged_right_along_the_jvp_tangent_of_a_large_input():
    # Over a large input the oracle keeps the forward's own answers along the JVP check's
    # tangent and reads them again for that check (the complex step refused: Richardson's
    # values); a forward answering in one buffer has overwritten them by then
    # (tests/core/test_directional.py: they are taken again). A right JVP passes every
    # check, a zero one fails the JVP check
    def zero_jvp(inputs, tangents):
        return (np.zeros_like(tangents[0]),)

    def real_only(forward):
        def real(x):
            if x.dtype.kind == "c":
                raise TypeError("real inputs only")
            return forward(x)
        return real

    for size in (10**4, 10**5):
        for jvp, ok in ((_tanh_jvp, True), (zero_jvp, False)):
            m = Mapping("tanh, one buffer", real_only(_one_buffer_tanh()), _tanh_vjp, jvp, inputs=[Input((4, 5))],
                        dtypes=("float32", "float64"))
            results = check_mapping(m, size=size)
            jvp_results = [r for r in results if r.check == "jvp_matches_oracle"]
            assert len(jvp_results) == 2 and all(r.verdict is (Verdict.PASS if ok else Verdict.FAIL) for r in jvp_results), \
                [r.describe() for r in jvp_results]
            assert not ok or all(r.ok for r in results), [r.describe() for r in results if not r.ok]


def test_answers_changed_after_they_were_given_are_judged_as_given():
    # A forward answering in one buffer with noise (two calls differ), and a VJP halving the
    # forward's last answer in place (a forward twice too large looked right to its reference)
    rng = np.random.default_rng(0)
    one = _one_buffer_tanh()

    def noisy(x):
        return np.add(one(x), 1e-3 * rng.standard_normal(x.shape), out=one(x))

    results = check_mapping(Mapping("noisy tanh, one buffer", noisy, _tanh_vjp, inputs=[Input((4, 5))], dtypes=("float64",)))
    assert {r.check for r in results if r.verdict is Verdict.FAIL} >= {"deterministic"}, [r.describe() for r in results]

    last = []

    def twice(x):
        last[:] = [2 * np.tanh(x)]
        return last[0]

    def halving_vjp(inputs, cotangents):
        last[0] /= 2  # the forward's answer, halved where the caller holds it
        return _tanh_vjp(inputs, cotangents)

    m = Mapping("tanh twice", twice, halving_vjp, inputs=[Input((4, 5))], reference=np.tanh, dtypes=("float64",))
    results = check_mapping(m)
    assert {r.check for r in results if r.verdict is Verdict.FAIL} >= {"forward_matches_reference"}, [r.describe() for r in results]


def test_a_failing_mapping_with_params_no_case_file_can_store_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKPROP_HARNESS_CASE_DIR", str(tmp_path))

    def forward(x, w):
        return x * w

    def twice(inputs, cotangents, w):
        return (2 * cotangents[0] * w,)

    m = Mapping("scale", forward, twice, inputs=[Input((4, 5))], params={"w": np.linspace(1, 2, 5)}, dtypes=("float64",))
    failed = [r for r in check_mapping(m) if r.verdict is Verdict.FAIL]
    assert failed and all("case file not written: param value array(" in r.repro for r in failed), [r.repro for r in failed]
