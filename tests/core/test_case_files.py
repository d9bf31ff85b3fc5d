"""Case files: one ``.npz`` per case, written and read back exactly; anything else is
refused with the file and key named, and no pickle is ever loaded."""

import numpy as np
import pytest

from harness.core.case_files import load_case, save_case
from harness.core.cases import make_case
from harness.core.spec import NetworkSpec

SPEC = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")


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
    assert back.recipe == f"--case-file {path}"  # shell-quoted where it needs to be
    with np.load(path) as data:
        assert str(data["_generator"]).startswith("backprop-harness")  # the mark that lets a later run replace it


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
    with pytest.raises(ValueError, match=r"junk.npz: not an .npz \(zip\) file"):
        load_case(tmp_path / "junk.npz")


def _arrays(case, **changes):
    arrays = {"sizes": np.array(case.spec.sizes), "activations": np.array(case.spec.activations),
              "loss": np.array(case.spec.loss), "x": case.x, "y": case.y}
    for i, (W, b) in enumerate(case.params):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"y": np.array([0, 1, 3])}, "labels must lie in 0..2, found 0..3"),
        ({"y": np.array([0.0, 1.0, 2.0])}, "expected integer labels of shape (3,)"),
        ({"W1": np.zeros((3, 5), np.float32)}, "W1 is float32; expected float64 like x"),
        ({"x": np.zeros((3, 4))}, "x has shape (3, 4), expected (N, 6)"),
        ({"loss": None}, "missing key(s) loss"),
    ],
)
def test_inconsistent_arrays_are_refused_naming_the_file_and_the_problem(tmp_path, changes, words):
    path = tmp_path / "odd.npz"
    np.savez(path, **_arrays(make_case(SPEC, 3), **changes))
    with pytest.raises(ValueError) as info:
        load_case(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_mse_targets_must_match_the_output_in_shape_and_dtype(tmp_path):
    case = make_case(NetworkSpec((4, 3, 2), ("tanh", "identity"), "mse"), 3)
    path = tmp_path / "mse.npz"
    np.savez(path, **_arrays(case, y=case.y.astype(np.float32)))
    with pytest.raises(ValueError, match=r"y is float32 \(3, 2\), expected float64 \(3, 2\)"):
        load_case(path)


def test_a_pickled_object_array_is_never_loaded(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, **_arrays(make_case(SPEC, 3), x=np.array([object()] * 3, dtype=object)))
    with pytest.raises(ValueError, match="x holds Python objects"):
        load_case(path)


# load_case promises "problems raise ValueError naming the file and key", numpy's refusals included.
@pytest.mark.parametrize("x", [np.zeros((3, 6), np.float16), np.array([object()] * 3, dtype=object)], ids=["float16", "pickle"])
def test_every_refusal_names_the_file(tmp_path, x):
    path = tmp_path / "odd.npz"
    np.savez(path, **_arrays(make_case(SPEC, 3), x=x))
    with pytest.raises(ValueError, match="odd.npz"):
        load_case(path)


def test_a_case_without_a_seed_loads_without_one(tmp_path):
    path = tmp_path / "seedless.npz"
    case = make_case(SPEC, 2)
    np.savez(path, **_arrays(case))
    back = load_case(path)
    assert back.seed is None and back.label == f"from {path}"
    np.testing.assert_array_equal(back.y, case.y)
