"""A mapping under test: Input and Mapping refuse bad declarations with one line naming
the value; answers are brought into one shape; ``module:attr`` loads a mapping."""

import sys

import numpy as np
import pytest

from harness.core.mapping import Input, Mapping, align_gradients, as_outputs, load_mapping, reference_of
from harness.mappings import examples


@pytest.mark.parametrize("kwargs, words", [
    ({"shape": (2, -1)}, "shape=(2, -1): expected a tuple of non-negative ints"),
    ({"shape": "3"}, "expected a tuple of non-negative ints"),
    ({"shape": (2,), "kind": "bool"}, "kind='bool': expected one of float, int"),
    ({"shape": (2,), "kind": "int"}, "needs high="),
    ({"shape": (2,), "kind": "int", "high": 3, "kinks": (0.0,)}, "kinks and ties apply to float inputs only"),
    ({"shape": (2,), "low": 1.0, "high": 1.0}, "expected low < high"),
    ({"shape": (2,), "low": float("nan")}, "low=nan: expected a finite number"),
    ({"shape": (2,), "kinks": ("zero",)}, "kinks=('zero',): expected finite numbers"),
])
def test_a_bad_input_declaration_is_refused_naming_the_value(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Input(**kwargs)


def test_an_input_normalises_its_shape_and_kinks():
    spec = Input(4, kinks=0)
    assert spec.shape == (4,) and spec.kinks == (0.0,) and spec.size == 4 and spec.differentiable
    assert Input((3,), kind="int", high=5).low == 0 and not Input((3,), kind="int", high=5).differentiable


@pytest.mark.parametrize("kwargs, words", [
    ({"name": ""}, "name='': expected a non-empty string"),
    ({"vjp": 3}, "vjp=3 is not callable"),
    ({"inputs": ()}, "give inputs="),
    ({"inputs": [(3, 4)]}, r"inputs\[0\] is \(3, 4\), expected harness.Input"),
    ({"inputs": [Input((3,), kind="int", high=2)]}, "no 'float' input"),
    ({"dtypes": ("float16",)}, "expected a non-empty subset of"),
    ({"nondeterminism": -1}, "nondeterminism=-1"),
])
def test_a_bad_mapping_is_refused_naming_the_value(kwargs, words):
    base = {"name": "m", "forward": np.tanh, "inputs": [Input((3,))]}
    with pytest.raises(ValueError, match=words):
        Mapping(**{**base, **kwargs})


def test_a_mapping_keeps_its_declarations():
    m = Mapping("tanh", np.tanh, inputs=[Input((3,))], dtypes="float32", params={"k": 1})
    assert m.dtypes == ("float32",) and m.params == {"k": 1} and m.oracle_forward is np.tanh
    assert examples.softmax.oracle_forward is examples.softmax_reference  # the reference, where given


def test_answers_come_back_as_tuples_of_arrays():
    assert len(as_outputs(np.ones(3))) == 1 and len(as_outputs((np.ones(3), np.arange(2)))) == 2
    floats = (True, False, True)
    g = align_gradients((np.ones(2), None, np.ones(3)), floats)
    assert g[1] is None and g[2].shape == (3,)
    g = align_gradients([np.ones(2), np.ones(3)], floats)  # the integer input left out
    assert g[1] is None and g[2].shape == (3,)
    assert align_gradients(np.ones(2), (True, False))[0].shape == (2,)  # a bare array for one float input
    with pytest.raises(ValueError, match="returned 1 entries, expected one per input \\(3\\) or one per float input \\(2\\)"):
        align_gradients([np.ones(2)], floats)
    with pytest.raises(ValueError, match="returned NoneType"):
        align_gradients(None, (True, True))
    # not one array of numbers: said so here, not left to fail later checks with a TypeError
    with pytest.raises(ValueError, match="the vjp's entry 0 is dict \\(an array of object\\), expected an array of numbers"):
        align_gradients({"x": np.ones(2)}, (True,))
    with pytest.raises(ValueError, match="the vjp's entry 1 is generator"):
        align_gradients((np.ones(2), (g for g in [np.ones(3)])), floats[::2] + (True,))


def test_a_vjp_answering_with_a_dict_fails_gradient_shapes_and_errs_nowhere():
    import harness

    def vjp(inputs, cotangents):
        (x,), (g,) = inputs, cotangents
        return {"x": g * (1 - np.tanh(x) ** 2)}

    results = harness.check(Mapping("tanh-dict", np.tanh, vjp, inputs=[Input((5,))], dtypes=("float64",)))
    verdicts = {r.check: r for r in results}
    assert verdicts["gradient_shapes"].verdict.value == "FAIL"
    assert "the vjp's entry 0 is dict" in verdicts["gradient_shapes"].message
    assert not [r.check for r in results if r.verdict.value == "ERROR"], [(r.check, r.message) for r in results]


def test_a_mapping_loads_from_module_attr_or_a_factory(tmp_path, monkeypatch):
    (tmp_path / "mymaps.py").write_text(
        "import numpy as np, harness\n"
        "tanh = harness.Mapping('tanh', np.tanh, inputs=[harness.Input((2,))])\n"
        "def make():\n    return tanh\n"
        "def needs(x):\n    return tanh\n"
        "number = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mymaps", raising=False)
    m = load_mapping("mymaps:tanh")
    assert m.name == "tanh" and m.ref == "mymaps:tanh" and reference_of(m) == "mymaps:tanh"
    assert load_mapping("mymaps:make").name == "tanh"
    for ref, words in [("mymaps", "expected module:attr"), ("nosuch:x", "cannot import module 'nosuch'"),
                       ("mymaps:missing", "has no attribute 'missing'"), ("mymaps:number", "is int, expected a harness.Mapping"),
                       ("mymaps:needs", "is function, expected")]:
        with pytest.raises(ValueError, match=words):
            load_mapping(ref)


def test_a_reproduce_command_names_the_module_attribute_holding_the_mapping():
    assert reference_of(examples.relu) == "harness.mappings.examples:relu"
    assert reference_of(Mapping("local", lambda x: x, inputs=[Input((1,))])) == "MODULE:ATTR"
