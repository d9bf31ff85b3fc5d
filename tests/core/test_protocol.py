"""The plug-in protocol: capabilities and what they rule out, the function shortcut,
duck-typed objects, results in either form, and ``prepare`` for plug-ins written to
the first protocol."""

import numpy as np
import pytest

from harness import run_checks
from harness.core import protocol
from harness.core.cases import make_case
from harness.core.protocol import (
    Capabilities,
    FunctionImplementation,
    Implementation,
    ImplementationError,
    Prepared,
    StepResult,
    as_implementation,
)
from harness.core.reference import loss_and_grads
from harness.core.results import Verdict
from harness.core.spec import SEED_SPEC, NetworkSpec

SPEC = NetworkSpec((4, 3, 2), ("tanh", "identity"), "cross_entropy")


# --- capabilities ---------------------------------------------------------------------


def test_capabilities_normalise_to_sets():
    caps = Capabilities(activations=["relu"], dtypes=["float32"])
    assert caps.activations == frozenset({"relu"}) and isinstance(caps.devices, tuple)
    assert np.dtype("float32").name in caps.dtypes


def test_the_default_capabilities_are_every_activation_and_loss_in_float64_on_the_cpu():
    caps = Capabilities()
    assert caps.unsupported(SEED_SPEC, "float64") is None
    assert caps.unsupported(SEED_SPEC, "float32") == "dtype float32 not supported"
    assert caps.devices == ("cpu",) and not caps.input_grad and caps.nondeterminism == 0.0
    assert caps.max_multiply_adds is None and caps.too_slow(SEED_SPEC, 10**6) is None


@pytest.mark.parametrize(
    "caps, spec, dtype, words",
    [
        (Capabilities(activations={"tanh"}), NetworkSpec((3, 2, 2), ("relu", "sigmoid")), "float64",
         "activation relu, sigmoid not supported"),
        (Capabilities(losses={"mse"}), SPEC, "float64", "loss cross_entropy not supported"),
        (Capabilities(dtypes={"float32"}), SPEC, "float64", "dtype float64 not supported"),
    ],
)
def test_unsupported_names_what_is_missing(caps, spec, dtype, words):
    assert caps.unsupported(spec, dtype) == words


def test_too_slow_compares_a_steps_multiply_adds_with_the_declared_budget():
    caps = Capabilities(max_multiply_adds=SEED_SPEC.multiply_adds(8))
    assert caps.too_slow(SEED_SPEC, 8) is None  # exactly at the budget runs
    reason = caps.too_slow(SEED_SPEC, 9)
    assert reason == (f"a step of 784-500-10 relu,identity cross_entropy at batch 9 costs "
                      f"{SEED_SPEC.multiply_adds(9):,} multiply-adds, beyond the declared max_multiply_adds "
                      f"{SEED_SPEC.multiply_adds(8):,}")


# --- results ----------------------------------------------------------------------------


def test_a_step_may_return_the_tuple_shortcut_or_a_step_result():
    grads = [([[1.0, 2.0]], [3.0])]
    two = StepResult.from_native((0.5, grads))
    assert two.loss == 0.5 and two.dx is None
    assert isinstance(two.grads[0][0], np.ndarray) and two.grads[0][0].shape == (1, 2)
    three = StepResult.from_native([0.5, grads, np.ones((2, 1))])
    assert three.dx.shape == (2, 1)
    same = StepResult(0.5, grads)
    assert StepResult.from_native(same) is same


@pytest.mark.parametrize("bad", [0.5, (0.5,), (0.5, [], None, None), {"loss": 0.5}])
def test_any_other_return_is_a_type_error_saying_what_is_expected(bad):
    with pytest.raises(TypeError, match=r"expected a StepResult or a tuple \(loss, \[\(dW, db\), \.\.\.\]\)"):
        StepResult.from_native(bad)


def test_prepared_defaults_pass_the_batch_through_and_cannot_replace_parameters():
    prepared = Prepared()
    x, y = np.ones((2, 3)), np.zeros(2)
    assert prepared.batch(x, y) == (x, y)
    assert prepared.to_numpy((1.0, [])).loss == 1.0
    with pytest.raises(NotImplementedError, match="Prepared cannot replace its parameters"):
        prepared.set_params([])


# --- the function shortcut -------------------------------------------------------------


def test_plain_function_is_an_implementation_of_everything_in_float64():
    def mine(spec, params, x, y):
        """My backprop."""
        return loss_and_grads(spec, params, x, y)

    impl = as_implementation(mine)
    assert isinstance(impl, FunctionImplementation)
    assert impl.capabilities.dtypes == {"float64"} and impl.description == "My backprop."
    assert impl.capabilities.unsupported(SPEC, "float32") == "dtype float32 not supported"
    assert impl.name.endswith("test_protocol:test_plain_function_is_an_implementation_of_everything_in_float64.<locals>.mine")
    results = run_checks(mine, make_case(SPEC, 3))
    assert all(r.verdict is Verdict.PASS for r in results if r.verdict is not Verdict.SKIP)


def test_function_may_declare_capabilities():
    def f(spec, params, x, y):
        raise NotImplementedError

    f.dtypes = ("float32",)
    f.activations = ("relu",)
    caps = as_implementation(f).capabilities
    assert caps.dtypes == {"float32"} and caps.activations == {"relu"}
    f.capabilities = Capabilities(input_grad=True)  # a whole Capabilities wins over the parts
    assert as_implementation(f).capabilities.input_grad


def test_a_function_gets_the_current_parameters_after_set_params():
    seen = []

    def spy(spec, params, x, y):
        seen.append(params[0][0][0, 0])
        return loss_and_grads(spec, params, x, y)

    case = make_case(SPEC, 2)
    prepared = as_implementation(spy).prepare(SPEC, case.params)
    prepared.step((case.x, case.y))
    moved = [(W + 1.0, b) for W, b in case.params]
    prepared.set_params(moved)
    prepared.step((case.x, case.y))
    assert seen == [case.params[0][0][0, 0], case.params[0][0][0, 0] + 1.0]


# --- objects, classes, and the first protocol --------------------------------------------


class _DuckPrepared(Prepared):
    def __init__(self, spec, params):
        self.spec, self.params = spec, params

    def step(self, batch):
        return loss_and_grads(self.spec, self.params, *batch)


class _Duck:
    """Not an Implementation: an object with prepare (the first protocol's signature)."""

    name = "duck"
    capabilities = Capabilities(dtypes={"float64", "float32"})
    compiles_per_shape = True  # as the first protocol declared it: beside the capabilities

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return _DuckPrepared(spec, params)

    def unavailable_reason(self, device=None):
        return "no quacking on the GPU" if device == "cuda" else None


def test_an_object_with_prepare_is_adopted_with_its_name_capabilities_and_probe():
    impl = as_implementation(_Duck())
    assert isinstance(impl, Implementation) and impl.name == "duck"
    assert impl.capabilities.dtypes == {"float64", "float32"}
    assert impl.capabilities.compiles_per_shape  # the first protocol's attribute became a capability
    assert impl.unavailable_reason("cuda") == "no quacking on the GPU" and impl.unavailable_reason() is None
    results = run_checks(impl, make_case(SPEC, 3))
    assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]


def test_prepare_sets_input_grad_on_a_plug_in_whose_prepare_predates_it():
    case = make_case(SPEC, 2)
    old = protocol.prepare(_Duck(), SPEC, case.params, dtype="float64", device=None, input_grad=True)
    assert old.input_grad is True

    class New(_Duck):
        def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
            prepared = _DuckPrepared(spec, params)
            prepared.asked = input_grad
            return prepared

    new = protocol.prepare(New(), SPEC, case.params, dtype="float64", device=None, input_grad=True)
    assert new.asked is True and new.input_grad is False  # told through the argument, not the attribute


def test_a_class_is_instantiated_and_one_that_cannot_be_says_why():
    class Fine(Implementation):
        name = "fine"

    class Broken(Implementation):
        def __init__(self):
            raise RuntimeError("needs a licence key")

    assert isinstance(as_implementation(Fine), Fine)
    with pytest.raises(ImplementationError, match=r"could not instantiate .*Broken\(\): needs a licence key"):
        as_implementation(Broken)


def test_a_nameless_implementation_takes_the_name_it_was_found_by():
    class Nameless(Implementation):
        pass

    assert as_implementation(Nameless(), name="pkg:Nameless").name == "pkg:Nameless"
    named = _Duck()
    assert as_implementation(named, name="pkg:other").name == "duck"  # an own name is kept


def test_anything_else_is_refused_naming_what_was_expected():
    with pytest.raises(ImplementationError, match=r"'math:pi': expected an Implementation, an object with prepare\(\), or a function .*; got float"):
        as_implementation(3.14, name="math:pi")
