"""The oracle's side of a VJP probe: the directional derivative of <c, f> and the
bracket of its valid values where outputs are not differentiable along the direction."""

import numpy as np
import pytest

from harness.core.directional import Differentiator
from harness.core.judging import judge
from harness.core.mapping_oracle import _float_cotangents
from harness.core.probing import _bracket, probe, probe_bracket
from harness.mappings import examples

rng = np.random.default_rng(0)


def test_probes_and_their_brackets():
    x = rng.normal(size=1000)
    x[:10] = 0.0  # on relu's kink
    c = rng.normal(size=1000)
    d = Differentiator(examples.relu_forward, [x], {})
    w = [np.where(rng.random(1000) < 0.5, -1.0, 1.0)]
    value, err = probe(d, (c,), w)
    smooth = float(np.sum(c * (x > 0) * w[0]))
    center, radius, _ = probe_bracket(d, (c,), w)
    # at the ten kinks any slope in [0, 1] is valid, each on its own
    assert radius == pytest.approx(float(np.sum(np.abs(c[:10]))) / 2, rel=1e-6)
    assert abs(smooth - center) <= radius + 1e-9
    assert abs(probe(d, (c,), w, exact=True)[0] - value) <= 4 * err + 1e-9


def test_over_many_elements_the_bracket_comes_from_the_steps_below_the_kinks_spacing():
    # relu over 10^5 elements, none on its kink: along random signs the usual steps
    # cross the kinks of every element within 2^-9 of its scale (hundreds), each then
    # bracketed; the small steps cross almost none, and that narrower bracket is kept
    local = np.random.default_rng(3)
    x, c = local.normal(size=10**5), local.normal(size=10**5)
    w = [np.where(local.random(10**5) < 0.5, -1.0, 1.0)]
    d = Differentiator(examples.relu_forward, [x], {})
    wide = _bracket(_float_cotangents(d, (c,)), judge(d.sides(w)))
    center, radius, error = probe_bracket(d, (c,), w)
    truth = float(np.sum(c * (x > 0) * w[0]))
    assert wide[1] > 1.0  # the usual steps' bracket: wider than a wrong gradient's error
    assert radius + 4 * error < 1e-3 * wide[1] and abs(center - truth) <= radius + 4 * error + 1e-9
