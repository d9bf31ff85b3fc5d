"""Sample cases where bugs show (kinks, ties, large magnitudes, degenerate shapes),
drawn from a seed; case files that store a case exactly."""

import numpy as np
import pytest

from harness.core.mapping import Input, Mapping
from harness.core.mapping_cases import (
    KINK_FRACTION,
    LARGE_MAGNITUDE,
    case_path,
    cotangents_for,
    load_mapping_case,
    make_case,
    sample_cases,
    save_mapping_case,
    tangents_for,
)
from harness.mappings import examples


def by_label(cases):
    return {c.label: c for c in cases}


def test_cases_cover_kinks_ties_large_and_degenerate_shapes_in_the_dtype_asked():
    m = Mapping("m", np.maximum, inputs=[Input((6, 8), kinks=(0.0,), ties=True), Input((6, 8))])
    cases = by_label(sample_cases(m, "float32", seed=3))
    assert set(cases) == {"random", "kinks", "ties", "large", "single sample"}  # two inputs: no width 1
    assert all(c.dtype == "float32" and all(x.dtype == np.float32 for x in c.inputs) for c in cases.values())
    on_kink = cases["kinks"].inputs[0] == 0.0
    assert 0 < on_kink.sum() and abs(on_kink.mean() - KINK_FRACTION) < 0.2  # exactly on the kink
    x = cases["ties"].inputs[0]
    assert np.array_equal(x[:, 1::2], x[:, 0::2])  # equal neighbours, in pairs
    assert np.abs(cases["large"].inputs[0]).max() > 3 * LARGE_MAGNITUDE / 2
    assert cases["single sample"].inputs[0].shape == (1, 8) and cases["single sample"].optional
    assert not cases["random"].optional
    again = by_label(sample_cases(m, "float32", seed=3))
    assert all(np.array_equal(a, b) for c in cases for a, b in zip(cases[c].inputs, again[c].inputs))  # seeded


def test_integer_inputs_are_drawn_in_range_and_bounded_floats_within_bounds():
    m = Mapping("m", np.take, inputs=[Input((50,), low=0.1, high=2.0), Input((40,), kind="int", high=3)])
    case = by_label(sample_cases(m, "float64"))["random"]
    x, idx = case.inputs
    assert x.min() >= 0.1 and x.max() < 2.0 and idx.dtype == np.int64 and set(idx) <= {0, 1, 2}
    assert case.differentiable == (True, False) and case.n_float_elements == 50
    assert "large" not in by_label(sample_cases(m, "float64"))  # bounded inputs keep their domain


def test_a_single_input_gets_a_width_1_case():
    assert by_label(sample_cases(examples.softmax, "float64"))["width 1"].inputs[0].shape == (4, 1)


def test_size_scales_the_shared_leading_dimension():
    (case,) = sample_cases(examples.matmul, "float64", size=3000)
    assert case.inputs[0].shape[0] * case.inputs[0].shape[1] >= 3000 and case.inputs[1].shape == (4, 5)
    m = Mapping("m", np.tanh, samples=lambda rng, dtype: [])
    with pytest.raises(ValueError, match="gives no inputs= to scale"):
        sample_cases(m, "float64", size=10)


def test_samples_add_cases_of_their_own():
    def samples(rng, dtype):
        return [((np.array([1.0, 1.0, 0.5]),), {"axis": 0}, "a tie")]

    m = Mapping("max", examples.max_forward, examples.max_vjp, inputs=[Input((2, 3))], samples=samples)
    cases = by_label(sample_cases(m, "float32"))
    assert cases["a tie"].params == {"axis": 0} and cases["a tie"].inputs[0].dtype == np.float32
    bad = Mapping("m", np.tanh, samples=lambda rng, dtype: [np.ones(3)])
    with pytest.raises(ValueError, match=r"samples\(\) item 0 is ndarray, expected \(inputs_tuple, params_dict, label\)"):
        sample_cases(bad, "float64")


def test_make_case_refuses_inputs_without_a_float():
    with pytest.raises(ValueError, match="no float input"):
        make_case([np.arange(3)], {}, "float64", 0, "ints")


def test_cotangents_and_tangents_are_seeded_and_rounded_to_the_dtype():
    case = sample_cases(examples.embedding, "float32")[0]
    c = cotangents_for((np.zeros((2, 3)), np.zeros(2, np.int64)), "float32", 5)
    assert c[0].dtype == np.float32 and c[1] is None
    assert np.array_equal(c[0], cotangents_for((np.zeros((2, 3)), None), "float32", 5)[0])
    t = tangents_for(case)
    assert t[0].shape == case.inputs[0].shape and t[1] is None


def test_a_case_file_stores_the_case_exactly(tmp_path):
    case = sample_cases(examples.embedding, "float32", seed=4)[0]
    case.params = {"stride": (2, 2), "axis": -1, "name": "x"}
    path = tmp_path / "case.npz"
    save_mapping_case(case, path)
    back = load_mapping_case(path)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(case.inputs, back.inputs))
    assert back.params == case.params and isinstance(back.params["stride"], tuple)  # tuples stay tuples
    assert back.seed == 4 and back.recipe == f"--case-file {path}" and back.dtype == "float32"
    assert case_path("my map", case).endswith(".npz") and "my_map-float32-" in case_path("my map", case)


def test_a_bad_case_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_mapping_case(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(ValueError, match=r"junk.npz: not an .npz \(zip\) file"):
        load_mapping_case(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(ValueError, match="a single .npy array, not a case; expected an .npz holding a mapping's inputs"):
        load_mapping_case(tmp_path / "one.npy")
    np.savez(tmp_path / "nan.npz", in0=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="holds NaN or infinity"):
        load_mapping_case(tmp_path / "nan.npz")
    np.savez(tmp_path / "keys.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="expected inputs in0, in1"):
        load_mapping_case(tmp_path / "keys.npz")
    np.savez(tmp_path / "mixed.npz", in0=np.ones(2), in1=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="expected all float32 or all float64"):
        load_mapping_case(tmp_path / "mixed.npz")
    case = sample_cases(examples.relu, "float64")[0]
    case.params = {"f": np.tanh}
    with pytest.raises(ValueError, match="cannot be stored in a case file"):
        save_mapping_case(case, tmp_path / "fn.npz")
