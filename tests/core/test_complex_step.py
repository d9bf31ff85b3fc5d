"""The complex step is taken only where the forward is analytic on complex inputs:
detected along sparse random directions, or over a large input along a direction a
probe has already differenced finely enough, at no evaluation of its own."""

import numpy as np
import pytest

from harness.core.complex_step import CROSS_CHECK_ONE
from harness.core.directional import Differentiator
from harness.core.probing import probe, probe_steps


def rng_input(n=12, seed=0):
    return np.random.default_rng(seed).normal(size=n)


@pytest.mark.parametrize("forward", [np.tanh, np.sort, lambda x: np.maximum(x, 0), lambda x: np.max(x), np.exp])
def test_the_complex_step_is_used_where_the_forward_is_analytic(forward):
    d = Differentiator(forward, [rng_input()], {})
    assert d.complex_ok and d.method.startswith("complex step")


@pytest.mark.parametrize("forward, words", [
    (np.abs, "comes back real"),  # the imaginary part dropped
    (lambda x: np.sign(x) * x, "not analytic"),  # runs, but the complex step is wrong
    (lambda x: x * np.conj(x), "not analytic"),
    (lambda x: np.logaddexp(x, 0), "does not run on complex inputs"),
])
def test_the_complex_step_is_refused_where_it_would_be_wrong(forward, words):
    d = Differentiator(forward, [rng_input()], {})
    assert not d.complex_ok and words in d.method


def test_complex_points_are_read_only_so_probes_after_the_first_keep_their_point():
    """complex_contracted writes a buffer's real part once; the forward gets it read-only.
    A forward writing into its complex input raises there, and the complex step is not
    used: it would have moved the point of every later probe."""
    x = rng_input(40)
    d = Differentiator(np.tanh, [x], {})
    assert d.complex_ok
    rng = np.random.default_rng(1)
    c = [rng.uniform(-1, 1, 40)]
    for _ in range(3):  # each against the exact derivative: the point did not move
        w = [rng.uniform(-1, 1, 40)]
        assert d.complex_contracted(w, c) == pytest.approx(float(np.sum(c[0] * w[0] / np.cosh(x) ** 2)), rel=1e-13)

    def halves_its_input(x):
        x *= 0.5
        return np.tanh(x)

    d = Differentiator(halves_its_input, [rng_input()], {})
    assert not d.complex_ok and "read-only" in d.method


N = 2 * CROSS_CHECK_ONE  # a large input: one direction is cross-checked


def shared_probe(forward, n=N):
    """A differentiator over ``n`` elements, a shared direction along it, a cotangent, and
    Richardson's value and error of the probe along it (as vjp_probes takes them)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=n)
    d = Differentiator(forward, [x], {})
    w = [rng.uniform(-1, 1, size=n)]
    d.share("tangent", w)
    c = [rng.uniform(-1, 1, size=np.shape(d.outputs[0]))]
    value, error, _ = probe_steps(d, c, w)
    return d, w, c, value, error


def test_a_resolved_probe_along_a_shared_direction_decides_the_complex_step_at_no_cost_of_its_own():
    d, w, c, value, error = shared_probe(np.tanh)
    before = d.evaluations
    d.detect_complex_along(w, c, value, error)
    assert d.complex_ok and d.method == "complex step (checked against Richardson along 1 direction)"
    assert d.evaluations == before + 1  # the complex evaluation along w, and nothing else
    # ... which the probe along w then takes from what was kept: no second evaluation
    exact, _ = probe(d, c, w, exact=True)
    assert d.evaluations == before + 1 and d.kept_complex(w)
    x = d.inputs[0]
    assert abs(exact - np.dot(c[0], (1 - np.tanh(x) ** 2) * w[0])) <= 1e-12 * np.abs(c[0] * w[0]).sum()


@pytest.mark.parametrize("forward, words", [
    (lambda x: np.sign(x) * x, "not analytic"),
    (lambda x: x * np.conj(x), "not analytic"),
    (np.abs, "comes back real"),
])
def test_along_a_shared_direction_a_forward_that_is_not_analytic_is_refused(forward, words):
    d, w, c, value, error = shared_probe(forward)
    d.detect_complex_along(w, c, value, error)
    assert not d.complex_ok and words in d.method and not d.kept_complex(w)


def test_an_unresolved_or_small_probe_leaves_the_decision_to_the_sparse_directions():
    d, w, c, value, error = shared_probe(np.tanh)
    d.detect_complex_along(w, c, value, 1e-3 * abs(value))  # Richardson too coarse to cross-check against
    assert d._complex is None
    d.detect_complex_along([np.ones(N)], c, value, error)  # not the shared direction: nothing kept for a probe
    assert d._complex is None
    small, ws, cs, v, e = shared_probe(np.tanh, n=64)  # small: two sparse directions, as always
    small.detect_complex_along(ws, cs, v, e)
    assert small._complex is None
    assert d.complex_ok and d.method.endswith("along 1 direction)") and small.method.endswith("along 2 directions)")
