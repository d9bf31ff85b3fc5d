import numpy as np
import pytest

from harness.core.case_files import load_case, save_case
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_round_trip(tmp_path, dtype):
    case = make_case(NetworkSpec((4, 3, 2), ("leaky_relu", "sigmoid"), "mse"), 3, dtype, seed=5)
    path = tmp_path / "case.npz"
    save_case(case, path)
    with np.load(path) as data:
        assert {"sizes", "activations", "loss", "W0", "b0", "W1", "b1", "x", "y"} <= set(data.files)
    back = load_case(path)
    assert back.spec == case.spec and back.dtype == dtype and back.seed == 5
    for (W, b), (W2, b2) in zip(case.params, back.params):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    assert np.array_equal(back.x, case.x) and np.array_equal(back.y, case.y)
    assert back.recipe == f"--case-file {path}"


def test_load_case_errors_name_the_file_and_key(tmp_path):
    case = make_case(SPEC, 3)
    with pytest.raises(ValueError, match="no such file"):
        load_case(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, sizes=np.array([6, 5, 3]), activations=np.array(["relu", "identity"]), loss=np.array("cross_entropy"),
             W0=case.params[0][0], b0=case.params[0][1], W1=case.params[1][0].T, b1=case.params[1][1], x=case.x, y=case.y)
    with pytest.raises(ValueError, match=r"bad.npz: W1 has shape \(5, 3\), expected \(3, 5\)"):
        load_case(bad)
    np.savez(bad, sizes=np.array([6, 5, 3]), activations=np.array(["relu", "identity"]), loss=np.array("cross_entropy"), x=case.x, y=case.y)
    with pytest.raises(ValueError, match="missing key W0"):
        load_case(bad)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable .npz"):
        load_case(tmp_path / "junk.npz")
