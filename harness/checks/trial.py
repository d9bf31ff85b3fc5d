"""A trial: one implementation bound to one case and device, and what every check
shares about it (its first answer, the oracle's answer, how to reproduce it)."""

from __future__ import annotations

import shlex
from functools import cached_property

import numpy as np

from harness.core import oracle
from harness.core.cases import Case
from harness.core.containment import restoring_global_state, summarise, user_interrupted
from harness.core.protocol import Implementation, StepResult, default_device, prepare
from harness.core.results import CheckResult, Verdict
from harness.core.tolerances import coarser


class ImplementationRaised(Exception):
    """The implementation under test raised; carries a one-line summary."""


class Trial:
    """One implementation, one case, one device: runs steps on fresh copies of the
    case (the pristine case is never handed out) and caches the oracle's answer.

    Every call into the implementation goes through ``prepare`` and ``step``: whatever
    it raises there (any ``BaseException`` but the user's Ctrl-C) becomes
    ``ImplementationRaised``, and global state it changes is put back.
    ``strict_determinism`` demands bitwise-equal answers to identical calls (also
    demanded by ``Capabilities(deterministic=True)``)."""

    def __init__(self, impl: Implementation, case: Case, device: str | None = None, *, probes: int = 4, probe_seed: int = 0,
                 strict_determinism: bool = False):
        if not isinstance(impl, Implementation):
            raise TypeError(f"Trial needs an Implementation (see harness.resolve), got {type(impl).__name__}")
        for label, value in (("probes", probes), ("probe_seed", probe_seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 2**63:
                raise ValueError(f"{label}={value!r}: expected an integer in 0..2**63-1")
        self.impl = impl
        self.case = case
        self.device = device or default_device(impl)
        self.probes = int(probes)
        self.probe_seed = int(probe_seed)
        self.strict_determinism = bool(strict_determinism or impl.capabilities.deterministic)

    @property
    def dtype(self) -> str:
        return self.case.dtype

    @property
    def capabilities(self):
        return self.impl.capabilities

    def prepare(self, case: Case):
        try:
            with restoring_global_state():
                # dL/dx is asked for only where it is declared, so input_gradient can judge it
                return prepare(self.impl, case.spec, case.params, dtype=case.dtype, device=self.device,
                               input_grad=self.capabilities.input_grad)
        except BaseException as exc:
            if user_interrupted(exc):
                raise
            raise ImplementationRaised(summarise(exc, "prepare")) from None

    def step(self, prepared, case: Case) -> StepResult:
        try:
            with restoring_global_state():
                result = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
        except BaseException as exc:
            if user_interrupted(exc):
                raise
            raise ImplementationRaised(summarise(exc, "step")) from None
        if not isinstance(result, StepResult):
            raise ImplementationRaised(f"to_numpy returned {type(result).__name__}, expected StepResult")
        return result

    def call(self, case: Case | None = None) -> StepResult:
        """A fresh prepare and one step on a copy of ``case`` (default: the trial's)."""
        working = (case or self.case).copy()
        return self.step(self.prepare(working), working)

    @cached_property
    def first(self):
        """The first call: ``(result, the working copy it was given)``."""
        working = self.case.copy()
        return self.step(self.prepare(working), working), working

    @cached_property
    def expected(self) -> oracle.Expected:
        return expected_for(self.case, self.dtype)

    def repro(self) -> str:
        """The command that reruns this trial, every argument shell-quoted (the case's
        recipe is quoted where it is made)."""
        where = self.case.recipe or "--case-file CASE.npz"
        device = f" --device {shlex.quote(self.device)}" if self.device != default_device(self.impl) else ""
        strict = " --strict-determinism" if self.strict_determinism and not self.capabilities.deterministic else ""
        return f"backprop-harness check --impl {shlex.quote(self.impl.name)} {where}{device}{strict}"

    def result(self, check: str, verdict: Verdict, message: str = "", **kw) -> CheckResult:
        """A result record for this trial."""
        return CheckResult(
            check=check,
            impl=self.impl.name,
            case=self.case.describe(),
            verdict=verdict,
            message=message,
            seed=self.case.seed,
            repro=self.repro() if not verdict.ok else "",
            **kw,
        )

    def judged_dtype(self, arrays) -> str:
        """The precision an answer is judged at: the coarser of the requested dtype and
        the float dtypes actually returned (a float32 answer to a float64 request is a
        dtype error, reported by gradient_dtypes, not a gradient error)."""
        dtype = self.dtype
        for a in arrays:
            d = np.asarray(a).dtype
            if d.kind == "f" and d.itemsize >= 4:
                dtype = coarser(dtype, d)
        return dtype


def expected_for(case: Case, dtype: str | None = None) -> oracle.Expected:
    return oracle.expected(case.spec, case.params, case.x, case.y, dtype or case.dtype)


def tensor_names(n_layers: int) -> list[str]:
    return [f"layer {i} {kind}" for i in range(n_layers) for kind in ("W", "b")]


def flat(pairs) -> list:
    """``[(W0, b0), (W1, b1)]`` -> ``[W0, b0, W1, b1]``."""
    return [a for pair in pairs for a in pair]


def shapes_ok(grads, case: Case) -> bool:
    return len(grads) == case.spec.n_layers and all(np.shape(g) == p.shape for g, p in zip(flat(grads), flat(case.params)))


def subcase(case: Case, index) -> Case:
    """The samples ``index`` of ``case``'s batch, same parameters."""
    return Case(case.spec, case.params, case.x[index], case.y[index], case.seed, case.label, case.recipe)


def other_batch(case: Case) -> Case:
    """``case`` with another batch of the same shape (same parameters)."""
    rng = np.random.default_rng((case.seed or 0) + 7919)
    x = rng.normal(0.0, 1.0, case.x.shape).astype(case.x.dtype)
    if case.spec.loss == "cross_entropy":
        y = rng.integers(0, case.spec.sizes[-1], case.y.shape).astype(case.y.dtype)
    else:
        y = rng.normal(0.0, 1.0, case.y.shape).astype(case.y.dtype)
    return Case(case.spec, case.params, x, y, case.seed, case.label, case.recipe)


def other_params(case: Case) -> Case:
    """``case`` with other parameters and another batch, all of the same shapes."""
    rng = np.random.default_rng((case.seed or 0) + 104729)
    params = tuple(((W * rng.uniform(0.5, 1.5, W.shape)).astype(W.dtype), (b + 0.1).astype(b.dtype)) for W, b in case.params)
    other = other_batch(case)
    return Case(case.spec, params, other.x, other.y, case.seed, case.label, case.recipe)
