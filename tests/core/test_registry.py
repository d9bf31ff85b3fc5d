"""Finding implementations: built-ins and plug-ins by entry point, ``resolve`` by name,
``module:attr`` or object, and errors that name what is wrong."""

import sys
import textwrap

import pytest

from harness import run_checks
from harness.core import registry
from harness.core.cases import make_case
from harness.core.protocol import Capabilities, Implementation, ImplementationError
from harness.core.registry import resolve
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyImplementation
from tests import entry_points

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
    source = ("from harness.core.reference import loss_and_grads\n"
              "def backprop(spec, params, x, y):\n    return loss_and_grads(spec, params, x, y)\n")
    entry_points.install(tmp_path, monkeypatch, {"plugged": "ep_plugin:backprop", "broken": "ep_plugin_missing_module:f",
                                                 "numpy": "ep_plugin:backprop"}, {"ep_plugin": source}, name="ep-plugin")
    try:
        with pytest.warns(UserWarning) as caught:
            registry.refresh()
        messages = [str(w.message) for w in caught]
        assert any("entry point 'broken'" in m and "failed to load" in m for m in messages), messages
        # a plug-in cannot take a built-in's name: this distribution's entry points load first
        assert any("entry point 'numpy' (ep_plugin:backprop) ignored: the name is taken" in m for m in messages), messages
        impls = registry.implementations()
        assert isinstance(impls["numpy"], NumpyImplementation)
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


class _Named(Implementation):
    name = "registry-test-double"
    capabilities = Capabilities()


class _Unavailable(_Named):
    name = "registry-test-unavailable"

    def unavailable_reason(self, device=None):
        return "needs hardware this machine lacks"


def test_register_adds_replaces_and_available_leaves_out_the_unavailable(monkeypatch):
    registry.implementations()  # discover first, so the doubles do not stay registered
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    first, second, missing = _Named(), _Named(), _Unavailable()
    assert registry.register(first) is first and resolve("registry-test-double") is first
    registry.register(second)
    assert resolve("registry-test-double") is second  # same name: replaced
    registry.register(missing)
    assert "registry-test-unavailable" in registry.implementations()
    assert "registry-test-unavailable" not in registry.available()
    assert "registry-test-double" in registry.available()


def test_registered_here_is_what_register_added_and_no_entry_point(monkeypatch):
    registry.implementations()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    double = registry.register(_Named())
    here = registry.registered_here()
    assert here["registry-test-double"] is double
    assert not set(here) & set(registry.declared())  # numpy and the other entry points are not here


def test_resolve_passes_objects_through_as_implementations():
    impl = _Named()
    assert resolve(impl) is impl
    assert resolve(_Named).name == "registry-test-double"  # a class is instantiated


def test_a_registry_a_test_swaps_in_is_discovered_on_its_own(monkeypatch):
    # The loaded state belongs to the dict: one a test puts in place of the registry is
    # not taken as loaded because the one before it was (it was: empty, 'registered: none').
    before = registry.implementations()
    with monkeypatch.context() as patched:
        patched.setattr(registry, "_REGISTRY", {})
        double = registry.register(_Named())
        found = registry.implementations()
        assert {"numpy", "pure-python"} <= set(found) and found["registry-test-double"] is double
    assert registry.implementations() == before


SWAPPED_BEFORE_DISCOVERY = textwrap.dedent("""
    from _pytest.monkeypatch import MonkeyPatch
    from harness.core import registry

    patched = MonkeyPatch()
    patched.setattr(registry, "_REGISTRY", {})  # before anything was discovered in this process
    registry.implementations()
    patched.undo()
    print(" ".join(sorted(registry.implementations())))
""")


def test_a_registry_swapped_before_discovery_leaves_the_real_one_to_be_discovered():
    # The order dependence: a test that swapped the registry before anything had looked
    # at it had the entry points loaded into its own dict; once put back, the real one was
    # taken as loaded, and stayed empty for every later test in that process.
    import subprocess

    done = subprocess.run([sys.executable, "-c", SWAPPED_BEFORE_DISCOVERY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {"numpy", "pure-python"} <= set(done.stdout.split()), done.stdout + done.stderr
