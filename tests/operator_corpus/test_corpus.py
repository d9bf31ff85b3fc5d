"""The operator corpus: its size and shape; each bug really is a bug and each correct
entry keeps every contract (runs now, no engine needed); and, once the engine is merged,
each bug is caught by the check that names it and no correct entry is flagged.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import harness
from tests.operator_corpus.entries import (
    BUGS,
    CHECKS,
    CORRECT,
    FINITE,
    FORWARD,
    OPERATORS,
    STATE,
    UNJUDGEABLE,
    VARIANTS,
)
from tests.operator_corpus.evidence import CONTRACT_CHECKS, evidence
from tests.operator_corpus.operator import Entry

ENGINE = hasattr(harness, "Mapping") and hasattr(harness, "Input")
needs_engine = pytest.mark.skipif(
    not ENGINE, reason="harness.Mapping/harness.Input are not in this branch yet: the checking engine "
                       "(issue 11, items 1-8) is built on branch issue11 and merged by the lead")


def ids(entry: Entry) -> str:
    return entry.name


# --- the corpus itself ------------------------------------------------------------------------


def test_the_corpus_has_the_size_the_issue_asks_for():
    bugged = {e.operator.reference_class for e in BUGS}
    assert len(OPERATORS) >= 12
    assert len(BUGS) >= 30 and len(bugged) >= 12, (len(BUGS), len(bugged))
    assert len(VARIANTS) >= 10
    assert {c for e in BUGS for c in e.catches} >= {"inputs_not_mutated", "no_state_between_calls",
                                                    "gradient_dtypes", "gradient_shapes"}  # mutation, state, dtype, shape
    assert len({e.name for e in BUGS + CORRECT}) == len(BUGS + CORRECT), "entry names must be unique"


@pytest.mark.parametrize("entry", BUGS, ids=ids)
def test_every_bug_says_what_it_gets_wrong_and_what_must_catch_it(entry: Entry):
    assert entry.mistake and entry.operator.source, "a one-line comment and a source"
    assert set(entry.catches) <= set(CHECKS), f"unknown check names {set(entry.catches) - set(CHECKS)}"
    assert entry.operator.reference_class is not entry.operator, "a bug is a subclass of a correct operator"


@pytest.mark.parametrize("entry", CORRECT, ids=ids)
def test_every_correct_entry_says_why_it_is_correct(entry: Entry):
    assert entry.mistake and not entry.catches


# --- runs now: every bug is real, every correct entry keeps the contracts ------------------------


@pytest.mark.parametrize("entry", BUGS, ids=ids)
def test_bug_really_breaks_what_each_named_check_checks(entry: Entry):
    found = evidence(entry)
    missing = [check for check in entry.catches if not found[check]]
    assert not missing, f"{entry.name}: no sample case shows a {missing} failure; found {found}"


@pytest.mark.parametrize("entry", [e for e in BUGS if not set(e.catches) & set(FORWARD + FINITE + STATE)], ids=ids)
def test_a_backward_bug_leaves_the_forward_alone(entry: Entry):
    """Each bug differs from its correct operator in exactly the mistake: a backward bug's
    forward is the correct one on every sample."""
    assert evidence(entry)["forward_matches_reference"] == []


@pytest.mark.parametrize("entry", [e for e in BUGS if e.catches == FORWARD], ids=ids)
def test_a_forward_bug_is_consistent_with_itself(entry: Entry):
    """A wrong forward whose VJP (and JVP) are right *for that forward*: only comparing
    forwards can see it, so its own derivatives must not give it away (except where the
    wrong forward is not even finite: the unbiased variance of one element)."""
    found = evidence(entry)
    assert set(found["jvp_vjp_transpose"]) <= set(found["outputs_are_finite"])


@pytest.mark.parametrize("entry", CORRECT, ids=ids)
def test_correct_entry_keeps_every_contract_and_its_jvp_is_its_vjps_transpose(entry: Entry):
    found = evidence(entry)
    assert {check: found[check] for check in CONTRACT_CHECKS + ("jvp_vjp_transpose",) if found[check]} == {}


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.name)
def test_correct_operator_agrees_with_itself_in_float64(operator):
    """The evidence helper finds nothing in a correct operator (it is no trivial 'always wrong')."""
    assert {check: cases for check, cases in evidence(Entry(operator)).items() if cases} == {}


# --- needs the engine: harness.check on every entry --------------------------------------------


@functools.cache
def flagged_by(entry: Entry) -> dict[str, str]:
    """Check -> verdict for every check harness.check did not pass or skip on this entry."""
    results = harness.check(entry.mapping(), dtype=entry.dtype)
    return {r.check: r.verdict.value for r in results if not r.verdict.ok}


@needs_engine
@pytest.mark.parametrize("entry", BUGS, ids=ids)
def test_each_bug_is_caught_by_the_check_that_names_it(entry: Entry):
    flagged = flagged_by(entry)
    assert entry.catches[0] in flagged, f"{entry.name} ({entry.mistake}) not flagged by {entry.catches[0]}: {flagged}"


@needs_engine
@pytest.mark.parametrize("entry", [e for e in BUGS if len(e.catches) > 1], ids=ids)
def test_every_named_check_catches_its_bug(entry: Entry):
    flagged = flagged_by(entry)
    assert set(entry.catches) <= set(flagged), f"{entry.name}: {set(entry.catches) - set(flagged)} passed it"


def unjudgeable(entry: Entry, result) -> bool:
    """Whether ``result`` is on a case of ``entry`` declared in UNJUDGEABLE."""
    return any(name == entry.name and result.case.startswith(label + " ") for name, label in UNJUDGEABLE)


@needs_engine
@pytest.mark.parametrize("entry", CORRECT, ids=ids)
def test_no_correct_entry_is_flagged(entry: Entry):
    results = harness.check(entry.mapping(), dtype=entry.dtype)
    flagged = {f"{r.check} on {r.case}": r.describe() for r in results
               if not r.verdict.ok and not (r.verdict is harness.Verdict.INCONCLUSIVE and unjudgeable(entry, r))}
    assert flagged == {}, f"{entry.name} ({entry.mistake}) flagged:\n" + "\n".join(flagged.values())
    assert any(r.check == "vjp_matches_oracle" and r.verdict is harness.Verdict.PASS for r in results), (
        f"{entry.name}: vjp_matches_oracle never ran, so nothing was checked")


@needs_engine
@pytest.mark.parametrize("name, label", sorted(UNJUDGEABLE))
def test_a_case_no_tolerance_can_judge_is_inconclusive_for_the_correct_backward_and_a_zero_one(name, label):
    """Issue 13's rule on the corpus: where the correct answer cannot be told from an all-zero
    gradient, the correct one is INCONCLUSIVE (not a FAIL) and the zero one is never a PASS (it
    FAILs where some element can tell it apart: sigmoid'(-17) is computed accurately)."""
    entry = next(e for e in CORRECT if e.name == name)
    correct = entry.mapping()
    zero = harness.Mapping(correct.name, correct.forward, vjp=lambda inputs, cotangents, **params: tuple(
        None if np.asarray(x).dtype.kind != "f" else np.zeros_like(x) for x in inputs),
        inputs=correct.inputs, params=correct.params, samples=correct.samples, reference=correct.reference,
        dtypes=correct.dtypes)
    def verdicts(mapping):
        results = [r for r in harness.check(mapping, dtype=entry.dtype) if r.case.startswith(label + " ")]
        return {r.check: r.verdict for r in results if r.check in ("vjp_matches_oracle", "vjp_probes")}

    inconclusive = harness.Verdict.INCONCLUSIVE
    assert verdicts(correct) == {"vjp_matches_oracle": inconclusive, "vjp_probes": inconclusive}
    assert set(verdicts(zero).values()) <= {inconclusive, harness.Verdict.FAIL}


def contract_mapping(name, forward, vjp=None, jvp=None, inputs=(), params=None, samples=None, reference=None,
                     dtypes=("float64",), nondeterminism=0.0):
    """THE CONTRACT's ``harness.Mapping`` signature (notes/spec11.md)."""


def contract_input(shape, kind="float", low=None, high=None, kinks=(), ties=False):
    """THE CONTRACT's ``harness.Input`` signature."""


def recorder(signature_of):
    """A private stand-in for a ``harness`` constructor, used only while the engine is absent:
    it binds the call to the contract's signature (a TypeError if it does not fit) and
    returns the arguments."""
    import inspect

    signature = inspect.signature(signature_of)
    return lambda *args, **kwargs: signature.bind(*args, **kwargs).arguments


@pytest.mark.skipif(ENGINE, reason="the real harness.Mapping is here: test_no_correct_entry_is_flagged covers this")
@pytest.mark.parametrize("entry", BUGS + CORRECT, ids=ids)
def test_mapping_is_built_per_the_contract(entry: Entry, monkeypatch):
    monkeypatch.setattr(harness, "Mapping", recorder(contract_mapping), raising=False)
    monkeypatch.setattr(harness, "Input", recorder(contract_input), raising=False)
    built = entry.mapping()
    assert built["dtypes"] == (entry.dtype,) and built["name"] == entry.operator.name
    assert all(spec["kind"] in ("float", "int") for spec in built["inputs"])
    for xs, params, label in built["samples"](np.random.default_rng(0), np.dtype(entry.dtype)):
        assert len(xs) == len(built["inputs"]) and isinstance(params, dict) and label
        reference = built["reference"](*xs, **params)
        assert all(np.asarray(r).dtype == np.float64 for r in (reference if isinstance(reference, tuple) else (reference,)))


def drawn(spec, rng, dtype):
    """One input as the engine may draw it from ``spec``: uniform integers in [low, high),
    uniform floats in [low, high) where given, standard normal otherwise."""
    if spec.kind == "int":
        return rng.integers(spec.low, spec.high, size=spec.shape)
    if spec.low is not None and spec.high is not None:
        return rng.uniform(spec.low, spec.high, size=spec.shape).astype(dtype)
    return rng.standard_normal(spec.shape).astype(dtype)


@pytest.mark.parametrize("entry", CORRECT, ids=ids)
def test_the_declared_inputs_fit_the_default_params(entry: Entry):
    """Cases the engine draws from ``inputs`` and ``params``, not only the hand-made samples,
    run through forward and VJP, with gradients shaped like the inputs."""
    operator = entry.fresh()
    xs = tuple(drawn(spec, np.random.default_rng(0), np.dtype(entry.dtype)) for spec in operator.inputs)
    y = operator.forward(*xs, **operator.params)
    grads = operator.vjp(xs, (np.ones_like(y),), **operator.params)
    assert [None if g is None else np.shape(g) for g in grads] == [
        None if spec.kind == "int" else spec.shape for spec in operator.inputs]


def test_the_reference_keeps_a_complex_step():
    """The reference runs in float64 but must not cast away a complex perturbation: the engine
    detects complex-step safety by running the forward on complex inputs."""
    from tests.operator_corpus.activations import Tanh

    x = np.array([0.3, -1.2]) + 1e-20j
    assert np.allclose(Tanh().reference(x).imag / 1e-20, 1 - np.tanh(x.real) ** 2, rtol=1e-12, atol=0)
