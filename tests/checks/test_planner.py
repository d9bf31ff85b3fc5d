"""The planner decides from declared capabilities which cases run: the battery in every
declared dtype (or those asked for), minus cases beyond ``max_multiply_adds`` (left
out, saying why), and a named implementation that cannot run is a failure."""

import pytest

from harness.checks import planner
from harness.core.cases import make_case
from harness.core.protocol import Capabilities, Implementation
from harness.core.spec import ACTIVATIONS, KINKED, SEED_SPEC, NetworkSpec


class _Impl(Implementation):
    def __init__(self, name="planned", unavailable=None, **caps):
        self.name, self._unavailable = name, unavailable
        self.capabilities = Capabilities(**caps)

    def unavailable_reason(self, device=None):
        return self._unavailable


# --- the battery --------------------------------------------------------------------------


def test_the_battery_covers_every_activation_both_losses_depth_kinks_and_large_logits():
    cases = planner.battery()
    small = cases[:-1]
    assert {a for c in small for a in c.spec.activations} == set(ACTIVATIONS)
    assert {a for c in small for a in c.spec.activations[-1:]} >= {"identity", "tanh", "sigmoid", "leaky_relu"}  # as outputs
    assert {c.spec.loss for c in small} == {"cross_entropy", "mse"}
    assert max(c.spec.n_layers for c in small) == 3
    kinked = {c.spec.activations[0] for c in small if c.label == "on kinks"}
    assert kinked == set(KINKED)
    assert any(c.label == "large logits" for c in small)
    assert all(c.batch == planner.SMALL_BATCH for c in small)


def test_the_battery_ends_with_the_seed_network_and_follows_dtype_and_seed():
    last = planner.battery("float32", seed=3)[-1]
    assert last.spec == SEED_SPEC and last.batch == planner.SEED_BATCH
    assert last.dtype == "float32" and last.seed == 3
    assert len(planner.battery()) == len(planner.SMALL) + 1
    assert all(c.dtype == "float32" for c in planner.battery("float32"))


# --- plan() ----------------------------------------------------------------------------------


def test_every_declared_dtype_runs_the_whole_battery_float64_first():
    runs = planner.plan([_Impl(dtypes={"float32", "float64"})], named=True)
    assert [r.case.dtype for r in runs] == ["float64"] * 10 + ["float32"] * 10
    assert all(r.case_label == r.case.describe() and not r.skip for r in runs)


def test_dtypes_narrow_to_what_is_both_asked_for_and_declared():
    impl = _Impl(dtypes={"float64"})
    assert {r.case.dtype for r in planner.plan([impl], named=True, dtypes=["float64", "float32"])} == {"float64"}
    (nothing,) = planner.plan([impl], named=True, dtypes=["float32"])  # nothing runs, and it says why
    assert nothing.case is None and not nothing.failed
    assert nothing.skip == "left out: dtype float32 not declared (it declares float64)"


def test_max_multiply_adds_leaves_the_seed_case_out_with_the_reason():
    budget = planner.SMALL_BATCH * (7 * 6 + 6 * 5 + 5 * 3)  # the largest small network fits exactly
    runs = planner.plan([_Impl(max_multiply_adds=budget)], named=True)
    ran = [r for r in runs if r.case is not None]
    left = [r for r in runs if r.case is None]
    assert len(ran) == len(planner.SMALL)
    assert len(left) == 1 and left[0].case_label.startswith("784-500-10 relu,identity cross_entropy batch=64 float64")
    assert left[0].skip.startswith("left out: a step of 784-500-10") and "beyond the declared max_multiply_adds" in left[0].skip
    assert not left[0].failed  # left out on the user's behalf: not a failure


def test_an_unavailable_implementation_fails_when_named_and_is_skipped_when_discovered():
    missing = _Impl("missing", unavailable="needs a GPU")
    (named,) = planner.plan([missing], named=True)
    (found,) = planner.plan([missing], named=False)
    assert named.case is None and named.failed and named.skip == "unavailable: needs a GPU"
    assert found.case is None and not found.failed and found.skip == "unavailable: needs a GPU"


def test_a_given_case_is_the_only_run_whatever_the_budget():
    case = make_case(SEED_SPEC, 64, "float32")
    (run,) = planner.plan([_Impl(max_multiply_adds=1)], named=True, case=case)
    assert run.case is case and run.case_label == case.describe() and not run.skip


def test_the_seed_reaches_every_case():
    runs = planner.plan([_Impl()], named=True, seed=9)
    assert {r.case.seed for r in runs} == {9}


# --- left_out() and fixed_shapes() --------------------------------------------------------------


def test_left_out_gives_the_first_reason_and_the_budget_only_when_asked():
    small = NetworkSpec((6, 5, 3), ("relu", "identity"))
    assert planner.left_out(_Impl(), small, "float64", 5) is None
    assert planner.left_out(_Impl(unavailable="no GPU"), small, "float32", 5) == "no GPU"
    assert planner.left_out(_Impl(), small, "float32", 5) == "dtype float32 not supported"
    slow = _Impl(max_multiply_adds=10)
    assert "max_multiply_adds" in planner.left_out(slow, small, "float64", 5)
    assert planner.left_out(slow, small, "float64", 5, budget=False) is None


def test_fixed_shapes_only_for_implementations_that_compile_per_shape():
    assert planner.fixed_shapes(_Impl()) is None
    shapes = planner.fixed_shapes(_Impl(compiles_per_shape=True))
    assert shapes == list(planner.COMPILED_SHAPES)
    only_mse = planner.fixed_shapes(_Impl(compiles_per_shape=True, losses={"mse"}, activations={"tanh", "sigmoid"}))
    assert [s.loss for s, _ in only_mse] == ["mse"]
    assert planner.fixed_shapes(_Impl(compiles_per_shape=True, activations={"identity"})) == []


@pytest.mark.parametrize("dtypes", [{"float32"}, {"float64"}])
def test_fixed_shapes_are_judged_in_a_declared_dtype(dtypes):
    assert planner.fixed_shapes(_Impl(compiles_per_shape=True, dtypes=dtypes)) == list(planner.COMPILED_SHAPES)


def test_compiled_shapes_cover_both_losses_and_a_kinked_activation():
    specs = [spec for spec, _ in planner.COMPILED_SHAPES]
    assert {s.loss for s in specs} == {"cross_entropy", "mse"}
    assert any(a in KINKED for s in specs for a in s.activations)
    assert all(batch >= 2 for _, batch in planner.COMPILED_SHAPES)  # the properties need two samples
