"""The numpy built-in: passes the battery in both dtypes, owns copies of its parameters,
works in the dtype asked for, and returns dL/dx only when asked."""

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.reference import loss_and_grads
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyImplementation
from tests.impls.battery import assert_passes, battery

SPEC = NetworkSpec((5, 4, 3), ("leaky_relu", "sigmoid"), "mse")


@pytest.mark.parametrize("case", battery(["float64", "float32"]))
def test_numpy_passes_the_battery(case):
    assert_passes("numpy", case)


def test_the_step_reads_its_own_copy_of_the_parameters():
    case = make_case(SPEC, 3)
    params = [(W.copy(), b.copy()) for W, b in case.params]
    prepared = NumpyImplementation().prepare(SPEC, params)
    before = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
    params[0][0][:] = 0.0  # the caller's arrays change after prepare ...
    after = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
    np.testing.assert_array_equal(after.grads[0][0], before.grads[0][0])  # ... the step does not see it


def test_set_params_replaces_the_values_in_place():
    case, other = make_case(SPEC, 3, seed=1), make_case(SPEC, 3, seed=2)
    prepared = NumpyImplementation().prepare(SPEC, case.params)
    own = prepared.params[0][0]
    prepared.set_params(other.params)
    assert prepared.params[0][0] is own  # same arrays, new values: a training loop allocates nothing
    loss, grads = loss_and_grads(SPEC, other.params, case.x, case.y)
    result = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
    np.testing.assert_allclose(result.grads[1][0], grads[1][0], rtol=1e-12)
    assert result.loss == pytest.approx(loss, rel=1e-12)


def test_a_float32_step_computes_in_float32_and_forward_gives_the_steps_loss():
    case = make_case(SPEC, 3, "float32")
    prepared = NumpyImplementation().prepare(SPEC, case.params, dtype="float32")
    batch = prepared.batch(case.x.astype(np.float64), case.y)  # converted to the prepared dtype
    assert batch[0].dtype == np.float32
    result = prepared.to_numpy(prepared.step(batch))
    assert all(g.dtype == np.float32 for pair in result.grads for g in pair)
    assert prepared.forward(batch) == result.loss


def test_dx_is_returned_only_when_asked_for():
    case = make_case(SPEC, 3)
    plain = NumpyImplementation().prepare(SPEC, case.params)
    asked = NumpyImplementation().prepare(SPEC, case.params, input_grad=True)
    assert plain.to_numpy(plain.step(plain.batch(case.x, case.y))).dx is None
    dx = asked.to_numpy(asked.step(asked.batch(case.x, case.y))).dx
    np.testing.assert_allclose(dx, loss_and_grads(SPEC, case.params, case.x, case.y, input_grad=True)[2], rtol=1e-12)


def test_the_step_is_the_numpy_provider_s_operators_so_a_wrong_operator_backward_fails_its_checks(monkeypatch):
    # One backward per operator: the built-in has no copy of its own, so a relu VJP that
    # forgets the cotangent (the operator corpus's bug) breaks the MLP, and the checker says so.
    from harness import run_checks
    from harness.core.results import Verdict
    from harness.ops.catalog import NUMPY_OPERATORS
    from tests.operator_corpus.activations import ReluGradientNotMultiplied

    case = make_case(NetworkSpec((5, 4, 3), ("relu", "identity"), "cross_entropy"), 4, seed=3)
    assert all(r.verdict in (Verdict.PASS, Verdict.SKIP) for r in run_checks("numpy", case))
    monkeypatch.setitem(NUMPY_OPERATORS, "relu", ReluGradientNotMultiplied)
    failed = [r.check for r in run_checks("numpy", case) if r.verdict is Verdict.FAIL]
    assert "gradients_match_reference" in failed and "loss_matches_reference" not in failed, failed


def test_a_step_given_out_writes_the_gradients_there_and_refuses_arrays_that_do_not_fit():
    case = make_case(SPEC, 3)
    prepared = NumpyImplementation().prepare(SPEC, case.params)
    batch = prepared.batch(case.x, case.y)
    plain = prepared.to_numpy(prepared.step(batch))
    out = [(np.full_like(W, np.nan), np.full_like(b, np.nan)) for W, b in case.params]
    written = prepared.to_numpy(prepared.step(batch, out=out))
    for (dW, db), (oW, ob), (pW, pb) in zip(written.grads, out, plain.grads):
        assert dW is oW and db is ob  # the arrays given, not new ones
        np.testing.assert_array_equal(oW, pW)
        np.testing.assert_array_equal(ob, pb)
    assert written.loss == plain.loss
    with pytest.raises(ValueError, match=r"out\[0\] dW: expected a writable C-contiguous float64 array of shape \(4, 5\)"):
        prepared.step(batch, out=[(np.zeros((5, 4)), b) for _, b in out])
    with pytest.raises(ValueError, match="out: 1 \\(dW, db\\) pairs, expected 2"):
        prepared.step(batch, out=out[:1])
