"""Judging directional derivatives: a value where the one-sided and central ones
agree, the bracket of both where they part (a kink at the point or within the steps),
nothing where the forward is not finite nearby."""

import numpy as np
import pytest

from harness.core.directional import Differentiator
from harness.core.judging import judge


def test_one_sided_derivatives_that_part_give_a_bracket_not_a_value():
    x = np.array([0.0, 1.5, -2.0])
    d = Differentiator(lambda v: np.maximum(v, 0), [x], {})
    j = judge(d.sides([np.array([1.0, 0.0, 0.0])]))
    assert j.center[0][0] == pytest.approx(0.5) and j.radius[0][0] == pytest.approx(0.5, abs=1e-6)  # [0, 1]
    j = judge(d.sides([np.array([0.0, 1.0, 0.0])]))
    assert j.radius[0][1] == 0 and j.center[0][1] == pytest.approx(1.0, abs=1e-12)


def test_a_kink_within_the_steps_is_a_bracket_too():
    # a millionth from relu's kink: the right-hand steps cross it, the left-hand ones do not
    x = np.array([-1e-6])
    d = Differentiator(lambda v: np.maximum(v, 0), [x], {})
    d._complex = (False, "forced off")
    j = judge(d.sides([np.array([1.0])]))
    assert j.radius[0][0] > 0 and j.center[0][0] - j.radius[0][0] <= 0.0 <= j.center[0][0] + j.radius[0][0]


def test_a_forward_that_leaves_its_domain_is_unresolved_not_judged():
    d = Differentiator(np.log, [np.array([1e-6, 1.0])], {})
    d._complex = (False, "forced off")
    j = judge(d.sides([np.array([1.0, 1.0])]))
    assert j.unresolved[0][0] and not j.unresolved[0][1]
