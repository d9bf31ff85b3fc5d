"""Float64 directional derivatives of any forward: Richardson with error estimates,
brackets where one-sided derivatives part (the complex step: test_complex_step.py)."""

import numpy as np
import pytest

from harness.core.directional import Differentiator, ForwardFailed
from harness.core.vectors import inner


def rng_input(n=12, seed=0):
    return np.random.default_rng(seed).normal(size=n)


def test_richardson_and_the_complex_step_agree_with_the_derivative():
    x = rng_input()
    d = Differentiator(np.tanh, [x], {})
    w = [np.ones_like(x)]
    truth = 1 - np.tanh(x) ** 2
    right = d.right(w)
    assert np.max(np.abs(right.right[0] - truth)) < 1e-9
    assert np.all(np.abs(right.right[0] - truth) <= 4 * right.right_error[0] + right.noise[0])
    assert np.max(np.abs(d.complex_right(w)[0] - truth)) < 1e-15
    c = np.random.default_rng(1).normal(size=x.size)
    value, err = d.contracted(w, [c])
    assert abs(value - inner(c, truth)) <= 4 * err and err < 1e-8


def test_sides_many_stacks_directions_and_picks_elements():
    x = rng_input(5)
    d = Differentiator(np.tanh, [x], {})
    many = d.sides_many([[np.eye(5)[k]] for k in range(5)], pick=[np.array([0, 3])])
    assert many.central[0].shape == (5, 2)
    assert many.central[0][3, 1] == pytest.approx(1 - np.tanh(x[3]) ** 2, rel=1e-9) and many.central[0][0, 1] == 0


def test_scales_follow_the_spread_and_stay_inside_bounds():
    x = np.array([1000.0, 1001.0, 999.0, 0.01])
    d = Differentiator(np.log, [x], {}, bounds=[(0.0, None)])
    assert d.scales[0][0] == pytest.approx(np.std(x)) and d.scales[0][3] <= 0.01 / 2**-9


def test_a_forward_that_raises_at_the_point_is_reported():
    def broken(x):
        raise RuntimeError("nope")

    with pytest.raises(ForwardFailed, match="the float64 forward raised RuntimeError: nope"):
        Differentiator(broken, [np.ones(2)], {})
    with pytest.raises(ForwardFailed, match="no float output \\(int64 \\(2,\\)\\)"):
        Differentiator(lambda x: np.arange(2), [np.ones(2)], {})
    with pytest.raises(ForwardFailed, match="no float output \\(object \\(\\)\\)"):
        Differentiator(lambda x: {"y": x}, [np.ones(2)], {})




@pytest.mark.parametrize("forward", [lambda x: x, lambda x: x.reshape(3, 4), lambda x: np.maximum(x, 0)])
def test_a_shared_direction_keeps_each_steps_outputs_even_where_the_forward_returns_its_input(forward):
    """The moved inputs of a shared direction go into buffers the next step overwrites;
    an output that is that buffer (or a view of it) is copied before it is kept. Else
    every kept step would hold the last step's values, and Richardson over them would
    give 0 for the derivative of the identity."""
    x = rng_input()
    d = Differentiator(forward, [x], {})
    w = [np.random.default_rng(2).uniform(-1, 1, size=x.size)]
    d.share("tangent", w)
    c = [np.random.default_rng(3).uniform(-1, 1, size=np.shape(d.outputs[0]))]
    value, _ = d.contracted(w, c, levels=3)
    kept = d._kept(w)
    steps = sorted(h for h in kept if h != "complex")
    assert len(steps) == 3
    for h in steps:  # each kept output is x + h w through the forward, not another step's
        np.testing.assert_allclose(np.ravel(kept[h][0]), np.ravel(forward(x + h * w[0])), rtol=0, atol=1e-15)
    truth = float(np.dot(np.ravel(c[0]), np.ravel(forward(x + 1e-7 * w[0]) - forward(x)))) / 1e-7
    assert abs(value - truth) <= 1e-6 * max(1.0, abs(truth))


def _one_buffer(forward):
    """``forward`` answering every call in one buffer of its own."""
    buffer = {}

    def answer(x):
        out = buffer.setdefault("out", np.empty(np.shape(forward(x)), np.float64))
        out[...] = forward(x)
        return out
    return answer


@pytest.mark.parametrize("forward", [np.tanh, lambda x: np.outer(np.sin(x), x[:3])])
def test_kept_answers_a_later_call_wrote_into_are_taken_again(forward):
    """A shared direction keeps the forward's own answers with a fingerprint of their bits,
    not copies; an answer in one buffer the forward reuses has been overwritten by the next
    step, so it is taken again (and from then on kept as copies). Without that, Richardson
    along the direction read the last step's values three times."""
    x = rng_input(50)
    w = [np.random.default_rng(2).uniform(-1, 1, size=x.size)]
    answers = {}
    for name, f in (("plain", forward), ("one buffer", _one_buffer(forward))):
        d = Differentiator(f, [x], {})
        d.share("tangent", w)
        d.contracted(w, [np.ones(np.shape(d.outputs[0]))], levels=3)  # the three steps kept, each read once
        answers[name] = (d.right(w, levels=3), d._copy_kept)  # read again: the buffer holds the last one
    (plain, plain_copies), (buffered, buffered_copies) = answers["plain"], answers["one buffer"]
    assert not plain_copies and buffered_copies
    np.testing.assert_array_equal(buffered.right[0], plain.right[0])
    np.testing.assert_array_equal(buffered.right_error[0], plain.right_error[0])
