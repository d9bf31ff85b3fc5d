import sys
import textwrap

import numpy as np
import pytest

from harness import run_checks
from harness.core import registry
from harness.core.cases import make_case
from harness.core.protocol import (
    Capabilities,
    FunctionImplementation,
    Implementation,
    ImplementationError,
    as_implementation,
)
from harness.core.registry import resolve
from harness.core.results import Verdict
from harness.core.spec import NetworkSpec

SPEC = NetworkSpec((4, 3, 2), ("tanh", "identity"), "cross_entropy")


def test_builtins_are_registered_with_their_capabilities():
    impls = registry.implementations()
    assert {"pure-python", "numpy", "torch", "torch-compile"} <= set(impls)
    for name in ("pure-python", "numpy", "torch", "torch-compile"):
        caps = impls[name].capabilities
        assert caps.activations == {"relu", "sigmoid", "tanh", "leaky_relu", "identity"}
        assert caps.losses == {"cross_entropy", "mse"}
    assert impls["pure-python"].capabilities.dtypes == {"float64"}
    assert impls["numpy"].capabilities.dtypes == {"float32", "float64"}


def test_torch_implementations_say_why_they_are_unavailable():
    try:
        import torch
    except ImportError:
        torch = None
    for name in ("torch", "torch-compile"):
        reason = registry.implementations()[name].unavailable_reason()
        if torch is None:
            assert reason == "torch is not installed"
        else:
            assert reason is None
    cuda = registry.implementations()["torch"].unavailable_reason("cuda")
    if torch is None:
        assert cuda == "torch is not installed"
    elif not torch.cuda.is_available():
        assert cuda == "no CUDA device"


def test_plain_function_is_an_implementation_of_everything_in_float64():
    def mine(spec, params, x, y):
        """My backprop."""
        from harness.core.reference import loss_and_grads

        return loss_and_grads(spec, params, x, y)

    impl = as_implementation(mine)
    assert isinstance(impl, FunctionImplementation)
    assert impl.capabilities.dtypes == {"float64"} and impl.description == "My backprop."
    assert impl.capabilities.unsupported(SPEC, "float32") == "dtype float32 not supported"
    results = run_checks(mine, make_case(SPEC, 3))
    assert all(r.verdict is Verdict.PASS for r in results if r.verdict is not Verdict.SKIP)


def test_function_may_declare_capabilities():
    def f(spec, params, x, y):
        raise NotImplementedError

    f.dtypes = ("float32",)
    f.activations = ("relu",)
    caps = as_implementation(f).capabilities
    assert caps.dtypes == {"float32"} and caps.activations == {"relu"}


def test_resolve_module_attr_function_class_and_object(tmp_path, monkeypatch):
    (tmp_path / "learner_impls.py").write_text(textwrap.dedent('''
        from harness.core.reference import loss_and_grads
        from harness.core.protocol import Capabilities, Implementation, Prepared

        def backprop(spec, params, x, y):
            return loss_and_grads(spec, params, x, y)

        class MyPrepared(Prepared):
            def __init__(self, spec, params):
                self.spec, self.params = spec, params
            def step(self, batch):
                return loss_and_grads(self.spec, self.params, *batch)

        class MyImpl(Implementation):
            name = "mine"
            capabilities = Capabilities(dtypes={"float64"})
            def prepare(self, spec, params, *, dtype="float64", device=None):
                return MyPrepared(spec, params)

        class Namespace:
            impl = MyImpl()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("learner_impls:backprop", "learner_impls:MyImpl", "learner_impls:Namespace.impl"):
        impl = resolve(target)
        results = run_checks(impl, make_case(SPEC, 3))
        assert all(r.ok for r in results), target
    assert resolve("learner_impls:MyImpl").name == "mine"
    assert resolve("learner_impls:backprop").name == "learner_impls:backprop"


@pytest.mark.parametrize(
    "target, words",
    [
        ("no-such-impl", "no implementation of that name"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("numpy:no_such_attr", "module 'numpy' has no attribute 'no_such_attr'"),
        ("math:pi", "expected an Implementation"),
    ],
)
def test_resolve_errors_name_the_problem(target, words):
    with pytest.raises(ImplementationError) as info:
        resolve(target)
    assert words in str(info.value) and target in str(info.value)


def test_entry_points_are_discovered_and_broken_ones_become_warnings(tmp_path, monkeypatch):
    # a real installed distribution: a .dist-info with entry_points.txt on sys.path
    (tmp_path / "ep_plugin.py").write_text(
        "from harness.core.reference import loss_and_grads\n"
        "def backprop(spec, params, x, y):\n    return loss_and_grads(spec, params, x, y)\n"
    )
    dist = tmp_path / "ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[backprop_harness.impls]\nplugged = ep_plugin:backprop\nbroken = ep_plugin_missing_module:f\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.warns(UserWarning, match="entry point 'broken' .* failed to load"):
            registry.refresh()
        impls = registry.implementations()
        assert impls["plugged"].name == "plugged"
        assert "broken" in registry.load_failures() and "broken" not in impls
        results = run_checks("plugged", make_case(SPEC, 3))
        assert all(r.ok for r in results)
    finally:
        monkeypatch.undo()
        sys.modules.pop("ep_plugin", None)
        registry.refresh()
    assert "plugged" not in registry.implementations()


def test_register_rejects_nameless():
    with pytest.raises(ImplementationError, match="no name"):
        registry.register(Implementation())


def test_capabilities_normalise_to_sets():
    caps = Capabilities(activations=["relu"], dtypes=["float32"])
    assert caps.activations == frozenset({"relu"}) and isinstance(caps.devices, tuple)
    assert np.dtype("float32").name in caps.dtypes
