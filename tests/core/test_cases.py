"""Cases: drawn from a seed, in the dtype asked for, on kinks when asked, and copied
or converted without touching the original."""

import numpy as np
import pytest

from harness.core.cases import make_case
from harness.core.spec import SEED_SPEC, NetworkSpec

SPEC = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")


def test_same_seed_same_case_other_seed_other_case():
    a, b, c = make_case(SPEC, 4, seed=3), make_case(SPEC, 4, seed=3), make_case(SPEC, 4, seed=4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.params[0][0], b.params[0][0])
    assert not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_case_arrays_have_the_requested_dtype_and_shapes(dtype):
    case = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), "mse"), 5, dtype)
    assert case.x.dtype == dtype and case.y.dtype == dtype and case.y.shape == (5, 2)
    assert [(W.shape, b.shape) for W, b in case.params] == [((3, 4), (3,)), ((2, 3), (2,))]
    assert all(W.dtype == dtype for W, _ in case.params)
    labels = make_case(SPEC, 5, dtype).y
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 3


def test_initialisation_is_scaled_to_fan_in():
    case = make_case(SEED_SPEC, 2, seed=0)
    W0 = case.params[0][0]
    assert abs(W0.std() - np.sqrt(2 / 784)) < 0.05 * np.sqrt(2 / 784)  # Kaiming for relu


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_on_kinks_puts_preactivations_exactly_on_zero(dtype):
    case = make_case(SPEC, 6, dtype, seed=2, on_kinks=True)
    W, b = case.params[0]
    z = case.x @ W.T + b
    assert (z == 0).sum() >= 1
    # and the same units are exactly zero when recomputed in float64
    z64 = case.x.astype(np.float64) @ W.T.astype(np.float64) + b.astype(np.float64)
    assert np.array_equal(z == 0, z64 == 0)


def test_invalid_batch_and_dtype_are_named():
    with pytest.raises(ValueError, match="batch=0"):
        make_case(SPEC, 0)
    with pytest.raises(ValueError, match="float16"):
        make_case(SPEC, 2, "float16")


def test_copy_is_deep_so_mutating_it_leaves_the_original():
    case = make_case(SPEC, 3, seed=1)
    copy = case.copy()
    copy.x[0, 0] += 1.0
    copy.params[0][0][0, 0] += 1.0
    copy.y[0] = (copy.y[0] + 1) % 3
    fresh = make_case(SPEC, 3, seed=1)
    assert np.array_equal(case.x, fresh.x) and np.array_equal(case.y, fresh.y)
    assert np.array_equal(case.params[0][0], fresh.params[0][0])
    assert (copy.label, copy.recipe, copy.seed) == (case.label, case.recipe, case.seed)


def test_astype_converts_floats_keeps_labels_and_rewrites_the_recipe():
    case = make_case(SPEC, 3, "float64", seed=2)
    single = case.astype("float32")
    assert single.x.dtype == np.float32 and all(W.dtype == b.dtype == np.float32 for W, b in single.params)
    assert single.y.dtype == np.int64 and np.array_equal(single.y, case.y)  # labels stay integers
    assert "--dtype float32" in single.recipe and "--dtype float64" not in single.recipe
    mse = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), "mse"), 2).astype("float32")
    assert mse.y.dtype == np.float32
    with pytest.raises(ValueError, match="float16"):
        case.astype("float16")


def test_describe_and_recipe_say_how_to_rebuild_the_case():
    case = make_case(SPEC, 4, "float32", seed=7, on_kinks=True)
    assert case.describe() == "6-5-3 relu,identity cross_entropy batch=4 float32 seed=7 [on kinks]"
    assert case.recipe == ("--sizes 6,5,3 --activations relu,identity --loss cross_entropy --batch 4 --dtype float32 "
                           "--seed 7 --kinks")
    large = make_case(SPEC, 4, seed=7, logit_scale=1000.0)
    assert large.label == "large logits" and large.recipe.endswith("--logit-scale 1000")
    assert (case.batch, case.dtype) == (4, "float32")


def test_logit_scale_multiplies_the_last_layer_only():
    plain, large = make_case(SPEC, 4, seed=3), make_case(SPEC, 4, seed=3, logit_scale=1000.0)
    assert np.array_equal(plain.params[0][0], large.params[0][0])
    np.testing.assert_allclose(large.params[1][0], 1000.0 * plain.params[1][0])
    np.testing.assert_allclose(large.params[1][1], 1000.0 * plain.params[1][1])


@pytest.mark.parametrize("y, expected", [([0, -1, 2, 1], "label -1 at index 1; expected labels 0..2"),
                                         ([0, 1, 3, 1], "label 3 at index 2; expected labels 0..2"),
                                         ([0.0, 1.0, 2.0, 1.0], "y is float64 \\(4,\\), expected integer labels of shape \\(4,\\)"),
                                         ([0, 1, 2], "y is int64 \\(3,\\), expected integer labels of shape \\(4,\\)")])
def test_a_case_with_a_label_that_is_no_class_is_refused_naming_it(y, expected):
    # a case a caller builds (harness.check(impl, case)): a label -1 was used as an index from the end
    # by the reference and numpy alike, and every check PASSED on a loss that means nothing
    import dataclasses

    case = make_case(SPEC, 4, seed=3)
    with pytest.raises(ValueError, match=expected):
        dataclasses.replace(case, y=np.array(y))
