"""JAX functions as mappings: jax.vjp, jax.jvp, and the VJP of the VJP."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from harness.checks.mapping_runner import check_mapping  # noqa: E402
from harness.core.mapping import Input  # noqa: E402
from harness.core.results import Verdict  # noqa: E402
from harness.mappings.jax_mapping import jax_mapping  # noqa: E402


def failing(results):
    return {r.check for r in results if not r.ok}


def test_jax_functions_pass_with_their_own_conventions_at_kinks():
    # jnp.maximum(x, 0) has relu'(0) = 1/2: a valid subgradient
    m = jax_mapping(lambda x: jnp.maximum(x, 0), inputs=[Input((3, 4), kinks=(0.0,))], name="relu")
    results = check_mapping(m, second_order=True)
    # At an exact kink the backward itself jumps (relu' goes 0, 1/2, 1): its derivative does
    # not exist there, so the backward of the backward cannot be judged -- never a pass
    unjudged = {(r.check, r.case.split(" ")[0]) for r in results if r.verdict is Verdict.INCONCLUSIVE}
    assert not failing(results) - {"second_order"}, [r.describe() for r in results if not r.ok]
    assert unjudged == {("second_order", "kinks")}, [r.describe() for r in results if not r.ok]
    assert any(r.check == "second_order" and r.verdict is Verdict.PASS for r in results)


def test_integer_inputs_are_closed_over():
    m = jax_mapping(lambda w, i: w[i], inputs=[Input((5, 3)), Input((9,), kind="int", high=3)], name="gather")
    assert not failing(check_mapping(m, dtype="float64"))
    assert m.vjp((np.ones((5, 3)), np.array([0, 0])), (np.ones((2, 3)),))[1] is None


def test_a_custom_vjp_with_a_wrong_rule_fails_and_its_jvp_is_a_skip():
    @jax.custom_vjp
    def relu(x):
        return jnp.maximum(x, 0)

    relu.defvjp(lambda x: (jnp.maximum(x, 0), x), lambda x, g: (jnp.where(x >= 0, 2 * g, 0),))
    results = check_mapping(jax_mapping(relu, inputs=[Input((3, 4))], name="bad relu"), dtype="float32")
    assert {"vjp_matches_oracle", "vjp_probes"} <= failing(results)
    assert all(r.verdict is Verdict.SKIP for r in results if r.check == "jvp_matches_oracle")
