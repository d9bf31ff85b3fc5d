"""A mapping trial: one mapping bound to one case, and what every mapping check shares
(its first answers, the oracle, the cotangents, how to reproduce it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from harness.checks.trial import ImplementationRaised, summarise
from harness.core.directional import Differentiator, ForwardFailed
from harness.core.mapping import Mapping, NotOffered, align_gradients, as_outputs, copied, reference_of
from harness.core.mapping_cases import (
    MappingCase,
    case_path,
    cotangents_for,
    save_mapping_case,
)
from harness.core.results import CheckResult, Verdict

# Every element is compared up to this many float input elements (8 forward
# evaluations each); beyond it, vjp_probes judges the case.
ELEMENTWISE_LIMIT = 4096
PROBES = 5  # Rademacher directions for vjp_probes (a large case's JVP tangent among them; plus the all-ones direction and the JVP tangent for small cases): a miss bound of 2^-5


@dataclass
class Answer:
    """What one call of the mapping gave: the forward's outputs, the VJP aligned to the
    inputs (``grads``, or ``grads_problem`` saying why it could not be read), and the
    working copies of the inputs and cotangents after the calls."""

    outputs: tuple
    grads: tuple | None
    grads_problem: str
    raw_grads: object
    inputs: tuple
    vjp_inputs: tuple
    cotangents: tuple


class MappingTrial:
    """One mapping, one case: runs the mapping on fresh copies of the case (the pristine
    case is never handed out) and caches the oracle."""

    def __init__(self, mapping: Mapping, case: MappingCase, *, probes: int = PROBES, second_order: bool = False):
        self.mapping = mapping
        self.case = case
        self.probes = probes
        self.second_order = second_order

    @property
    def dtype(self) -> str:
        return self.case.dtype

    @property
    def seed(self) -> int:
        return self.case.seed

    @cached_property
    def names(self) -> list[str]:
        specs = self.mapping.inputs if len(self.mapping.inputs) == len(self.case.inputs) else ()
        return [(specs[i].name if specs and specs[i].name else f"input {i}") for i in range(len(self.case.inputs))]

    @cached_property
    def bounds(self):
        specs = self.mapping.inputs
        if len(specs) != len(self.case.inputs):
            return None
        return [(s.low, s.high) if s.differentiable else None for s in specs]

    # --- the oracle ---------------------------------------------------------

    @cached_property
    def differentiator(self) -> Differentiator:
        which = "reference" if self.mapping.reference else "forward"
        try:
            return Differentiator(self.mapping.oracle_forward, self.case.inputs, self.case.params, self.bounds)
        except ForwardFailed as exc:
            raise ImplementationRaised(f"{which} in float64 (the oracle's point): {exc}") from exc

    @cached_property
    def oracle_outputs(self) -> tuple:
        """Every output of the oracle forward in float64 (integer outputs as they are)."""
        outputs = self.differentiator.all_outputs
        return tuple(np.asarray(y, np.float64) if y is not None and np.asarray(y).dtype.kind == "f" else y for y in outputs)

    @cached_property
    def cotangents(self) -> tuple:
        return cotangents_for(self.oracle_outputs, self.dtype, self.seed)

    @cached_property
    def tangents(self) -> tuple:
        """One per float input (``None`` for integer inputs), in the case's dtype, times the
        input's spread over the smallest one (``tangent_unit``). ``unit * tangents`` is
        registered with the differentiator, and vjp_probes probes along it too where there
        is a JVP, so the oracle's evaluations along it serve both checks.

        Up to ``ELEMENTWISE_LIMIT`` elements: of unit variance and continuous
        (``uniform_unit``; Rademacher signs would give a softmax's short rows the all-ones
        tangent, whose JVP is 0, a time in four). Beyond: seeded Rademacher signs times the
        spreads, the form of vjp_probes' random directions, so that its probe along the
        tangent is one of the probes its miss bound counts (one random direction fewer:
        a complex evaluation of a million elements); rows there are long enough that
        equal signs along one are as unlikely as in any random direction."""
        from harness.core.mapping_oracle import tangent_unit
        from harness.core.vectors import signed, uniform_unit

        diff = self.differentiator
        unit = tangent_unit(diff)
        rng = np.random.default_rng(self.seed + 11)
        if self.case.n_float_elements > ELEMENTWISE_LIMIT:
            tangents = tuple(None if s is None else
                             signed(rng, s / unit if k is None else s, None if k is None else k / unit).astype(x.dtype, copy=False)
                             for s, k, x in zip(diff.scales, diff.constant_scales, self.case.inputs))
            diff.share(tangents, [None if t is None else unit * np.asarray(t, np.float64) for t in tangents])
            return tangents
        # in place and without copies where the dtype is already right: the same values,
        # fewer passes over a million elements
        # (a constant scale divided once: the same factor for every element)
        tangents = tuple(None if s is None else
                         _scaled(uniform_unit(rng, s.shape), s / unit if k is None else k / unit).astype(x.dtype, copy=False)
                         for s, k, x in zip(diff.scales, diff.constant_scales, self.case.inputs))
        diff.share(tangents, [None if t is None else unit * np.asarray(t, np.float64) for t in tangents])
        return tangents

    @cached_property
    def vjp_terms(self) -> list | None:
        """Per input, the term sizes the mapping declares for each element of its VJP of
        the trial's cotangents (``Mapping.vjp_terms``; None for integer inputs), or None."""
        return self._declared("vjp_terms", self.cotangents, self.case.inputs)

    @cached_property
    def jvp_terms(self) -> list | None:
        """Per output, the term sizes declared for its JVP along the trial's tangents, or None."""
        return self._declared("jvp_terms", self.tangents, self.oracle_outputs)

    def _declared(self, what: str, directions, like) -> list | None:
        function = getattr(self.mapping, what)
        if function is None:
            return None
        copies = tuple(None if d is None else np.array(d) for d in directions)
        terms = function(tuple(np.array(x) for x in self.case.inputs), copies, **self.case.params)
        terms = tuple(terms) if isinstance(terms, (tuple, list)) else (terms,)
        if len(terms) != len(like):
            raise ValueError(f"mapping {self.mapping.name!r}: {what} returned {len(terms)} arrays, expected {len(like)}")
        declared = []
        for i, (t, y) in enumerate(zip(terms, like)):
            if y is None or np.asarray(y).dtype.kind != "f":
                declared.append(None)
                continue
            t = np.abs(np.asarray(t, np.float64))
            if t.shape != np.shape(y):
                raise ValueError(f"mapping {self.mapping.name!r}: {what}[{i}] has shape {t.shape}, expected {np.shape(y)}")
            declared.append(t)
        return declared

    # --- calling the mapping ------------------------------------------------

    def forward(self, inputs) -> tuple:
        try:
            return as_outputs(self.mapping.forward(*inputs, **self.case.params))
        except Exception as exc:
            raise ImplementationRaised(summarise(exc, "forward")) from exc

    def vjp_raw(self, inputs, cotangents):
        try:
            return self.mapping.vjp(inputs, cotangents, **self.case.params)
        except Exception as exc:
            raise ImplementationRaised(summarise(exc, "vjp")) from exc

    def vjp(self, inputs, cotangents) -> tuple:
        """The VJP aligned to the inputs; a malformed answer raises ``ImplementationRaised``."""
        try:
            return align_gradients(self.vjp_raw(inputs, cotangents), self.case.differentiable)
        except ValueError as exc:
            raise ImplementationRaised(str(exc)) from exc

    def jvp(self, inputs, tangents) -> tuple:
        try:
            return as_outputs(self.mapping.jvp(inputs, tangents, **self.case.params))
        except NotOffered:
            raise
        except Exception as exc:
            raise ImplementationRaised(summarise(exc, "jvp")) from exc

    def call(self, case: MappingCase | None = None, cotangents=None, *, held_outputs: bool = True,
             held_grads: bool = True) -> Answer:
        """The forward and (where there is one) the VJP, each on its own copy of the case.
        The answers are copies (``harness.core.mapping.copied``) where they are held
        across later calls (``held_*``: the caller reads them before its next call)."""
        case = case or self.case
        cotangents = self.cotangents if cotangents is None else cotangents
        working = case.copy()
        outputs = self.forward(working.inputs)
        outputs = copied(outputs) if held_outputs else outputs
        if self.mapping.vjp is None:
            return Answer(outputs, None, "the mapping gives no vjp", None, working.inputs, working.inputs, ())
        vjp_case = case.copy()
        cots = tuple(None if c is None else c.copy() for c in cotangents)
        raw = self.vjp_raw(vjp_case.inputs, cots)
        try:
            grads, problem = align_gradients(raw, case.differentiable), ""
            grads = copied(grads) if held_grads else grads
        except ValueError as exc:
            grads, problem = None, str(exc)
        return Answer(outputs, grads, problem, raw, working.inputs, vjp_case.inputs, cots)

    @cached_property
    def first(self) -> Answer:
        return self.call()

    @cached_property
    def first_jvp(self):
        """``(tangents out, inputs after, tangents after, why not)`` of one JVP call on
        copies: the answer, what the call left of its arguments, or why there is none
        (no jvp, or the framework does not offer one: ``NotOffered``)."""
        if self.mapping.jvp is None:
            return None, (), (), "the mapping gives no jvp"
        working = self.case.copy()
        tangents = tuple(None if t is None else t.copy() for t in self.tangents)
        try:
            out = self.jvp(working.inputs, tangents)  # (the only JVP call until it is judged: no copy)
        except NotOffered as exc:
            return None, (), (), f"the framework offers no JVP here: {exc}"
        return out, working.inputs, tangents, ""

    # --- results ------------------------------------------------------------

    def case_file(self) -> tuple[str, str]:
        """``(path, problem)``: the case file that stores this case, written on first
        use (a case read from a file keeps its file)."""
        if self.case.recipe.startswith("--case-file "):
            return self.case.recipe.removeprefix("--case-file "), ""
        try:  # (params a case file cannot store, an ndarray say, are named by case_path too)
            path = case_path(self.mapping.name, self.case)
            if not os.path.exists(path):
                save_mapping_case(self.case, path)
        except (OSError, ValueError) as exc:
            return "", f"case file not written: {exc}"
        return path, ""

    def repro(self, check: str) -> str:
        path, problem = self.case_file()
        where = f"--case-file {path}" if path else f"(the case, {self.case.label}; {problem})"
        extra = " --second-order" if check == "second_order" else ""
        return f"backprop-harness check --mapping {reference_of(self.mapping)} --seed {self.seed} {where}{extra}"

    def result(self, check: str, verdict: Verdict, message: str = "", **kw) -> CheckResult:
        return CheckResult(
            check=check,
            impl=self.mapping.name,
            case=self.case.describe(),
            verdict=verdict,
            message=message,
            seed=self.seed,
            repro=self.repro(check) if not verdict.ok else "",
            **kw,
        )


def _scaled(u, factor):
    u *= factor
    return u


def float_grads(trial: MappingTrial, grads) -> list:
    """The entries of ``grads`` for float inputs, as float64 (``None`` elsewhere)."""
    return [np.asarray(g, np.float64) if d and g is not None else None for g, d in zip(grads, trial.case.differentiable)]


def shapes_ok(trial: MappingTrial, grads) -> bool:
    return grads is not None and all(
        not d or (g is not None and g.shape == x.shape) for g, d, x in zip(grads, trial.case.differentiable, trial.case.inputs)
    )


def judged_dtype(trial: MappingTrial, arrays) -> str:
    """The precision an answer is judged at: the coarser of the case's dtype and the float
    dtypes returned (a float32 answer to float64 inputs is gradient_dtypes' failure,
    not a value failure)."""
    from harness.core.tolerances import coarser

    dtype = trial.dtype
    for a in arrays:
        if a is not None and np.asarray(a).dtype.kind == "f" and np.asarray(a).dtype.itemsize >= 4:
            dtype = coarser(dtype, np.asarray(a).dtype)
    return dtype
