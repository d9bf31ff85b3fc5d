import math

import numpy as np
import pytest

from harness.core.finite_differences import central_difference, complex_step, extrapolate, richardson

# Functions with known derivatives, analytic along the real line.
KNOWN = [
    (lambda t: np.exp(t) * np.sin(t), lambda t: math.exp(t) * (math.sin(t) + math.cos(t)), 0.7),
    (lambda t: np.tanh(3 * t) ** 2, lambda t: 6 * math.tanh(3 * t) * (1 - math.tanh(3 * t) ** 2), 0.2),
    (lambda t: 1 / (1 + np.exp(-t)), lambda t: math.exp(-t) / (1 + math.exp(-t)) ** 2, -1.3),
    (lambda t: np.log(1 + t * t), lambda t: 2 * t / (1 + t * t), 2.5),
]


@pytest.mark.parametrize("f, df, t", KNOWN)
def test_complex_step_is_exact_to_rounding(f, df, t):
    assert abs(complex_step(f, t) - df(t)) <= 1e-13 * abs(df(t))


@pytest.mark.parametrize("f, df, t", KNOWN)
def test_richardson_beats_central_differences_and_estimates_its_error(f, df, t):
    value, estimate = richardson(f, t)
    error = abs(value - df(t))
    assert error <= 1e-9 * abs(df(t))
    assert error <= 10 * estimate + 1e-15  # the estimate is honest (not far below the truth)
    assert abs(central_difference(f, t, 1e-2) - df(t)) > error  # plain differences at that step are worse


def test_complex_step_sees_a_wrong_derivative():
    # the oracle is a real oracle: it disagrees with a wrong answer
    f, df, t = KNOWN[0]
    assert abs(complex_step(f, t) - 1.01 * df(t)) > 1e-3


def test_extrapolate_takes_one_sided_quotients_to_high_order_with_an_honest_estimate():
    from harness.core.finite_differences import ONE_SIDED, extrapolate

    x = np.linspace(-2, 2, 101)
    hs = [2.0**-7 / 2**i for i in range(5)]
    value, err = extrapolate([(np.tanh(x + h) - np.tanh(x)) / h for h in hs], ONE_SIDED)
    truth = 1 - np.tanh(x) ** 2
    assert np.max(np.abs(value - truth)) < 1e-10
    assert np.all(np.abs(value - truth) <= 10 * err + 1e-15)
    plain = np.max(np.abs((np.tanh(x + hs[-1]) - np.tanh(x)) / hs[-1] - truth))
    assert plain > 1e4 * np.max(np.abs(value - truth))  # the plain quotient is far worse


def test_extrapolate_rows_are_separate_problems_and_a_domain_edge_is_unknown():
    from harness.core.finite_differences import CENTRAL, extrapolate

    hs = [0.1 / 2**i for i in range(4)]
    rows = [np.stack([(np.sin(1 + h) - np.sin(1 - h)) / (2 * h), (np.exp(h) - np.exp(-h)) / (2 * h)]) for h in hs]
    value, err = extrapolate(rows, CENTRAL, rows=True)
    assert abs(value[0] - math.cos(1)) < 1e-12 and abs(value[1] - 1) < 1e-12
    value, err = extrapolate([np.array([1.0, np.nan]), np.array([1.0, 2.0])], CENTRAL)
    assert np.isnan(value[1]) and np.isinf(err[1]) and value[0] == 1.0


def test_extrapolate_over_a_large_array_picks_its_entry_on_a_sample_with_the_same_result():
    from harness.core.finite_differences import ONE_SIDED, extrapolate

    x = np.linspace(-2, 2, 5000)  # above the 4096 elements where the entry is chosen on a sample
    hs = [2.0**-7 / 2**i for i in range(5)]
    quotients = [(np.tanh(x + h) - np.tanh(x)) / h for h in hs]
    value, err = extrapolate(quotients, ONE_SIDED)
    truth = 1 - np.tanh(x) ** 2
    assert np.max(np.abs(value - truth)) < 1e-10
    # the same entry as the full tableau over halves of the array, which it chooses the same way
    halves = [extrapolate([q[k:k + 2500] for q in quotients], ONE_SIDED) for k in (0, 2500)]
    assert np.array_equal(value, np.concatenate([h[0] for h in halves]))
    assert np.array_equal(err, np.concatenate([h[1] for h in halves]))
    broken = [np.where(np.arange(5000) == 7, np.nan, q) for q in quotients]  # a quotient off its domain
    value, err = extrapolate(broken, ONE_SIDED)
    assert np.isnan(value[7]) and np.isinf(err[7]) and np.isfinite(value[8])


def test_extrapolating_a_large_array_leaves_no_garbage_cycle():
    # a cycle there held the tableau's full entries (a million elements each) until the
    # garbage collector ran, and the next check paid for fresh pages meanwhile
    import gc

    rng = np.random.default_rng(0)
    quotients = [rng.normal(size=20_000) for _ in range(4)]
    gc.collect()
    gc.disable()
    try:
        value, error = extrapolate(quotients, 1)
        assert value.shape == error.shape == (20_000,)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_extrapolate_of_plain_numbers_is_the_array_tableau_entry_for_entry():
    # A contracted probe's quotients are numbers, extrapolated in Python floats: the same
    # value and error estimate as the NumPy tableau of one-element arrays, bit for bit,
    # non-finite quotients included (a NaN estimate is never the one chosen)
    from harness.core.finite_differences import CENTRAL, ONE_SIDED

    rng = np.random.default_rng(3)
    for _ in range(3000):
        n = int(rng.integers(1, 6))
        q = list(rng.standard_normal(n) * 10.0 ** rng.integers(-12, 12) + rng.standard_normal())
        if rng.random() < 0.3:
            q[int(rng.integers(n))] = float(rng.choice([np.inf, -np.inf, np.nan]))
        if rng.random() < 0.2:
            q = [q[0]] * n
        power, ratio = int(rng.choice([ONE_SIDED, CENTRAL])), float(rng.choice([2.0, 4.0]))
        value, error = extrapolate(q, power, ratio)
        array_value, array_error = extrapolate([np.array([v]) for v in q], power, ratio)
        assert isinstance(value, float) and isinstance(error, float)
        assert error == array_error[0], (q, power, ratio)
        assert value == array_value[0] or (math.isnan(value) and math.isnan(array_value[0])), (q, power, ratio)
