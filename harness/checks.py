"""The checks: plain functions, each named after the property it asserts.

Every check takes a ``Trial`` (an implementation bound to a case and a device) and
returns a ``CheckResult``; none raises for a wrong implementation. Which checks apply
is decided from the implementation's declared capabilities. ``run_checks`` is the
one engine behind the CLI, the pytest plugin and the benchmarks.
"""

from __future__ import annotations

import math
import time
import traceback
from functools import cached_property

import numpy as np

from harness import hints, oracle
from harness.cases import Case
from harness.finite_differences import COMPLEX_STEP
from harness.registry import Implementation, StepResult, resolve
from harness.results import CheckResult, Coordinate, TensorReport, Verdict
from harness.tolerances import coarser, eps, factor, tolerance

WORST_SHOWN = 5


class ImplementationRaised(Exception):
    """The implementation under test raised; carries a one-line summary."""


class Trial:
    """One implementation, one case, one device: runs steps on fresh copies of the
    case (the pristine case is never handed out) and caches the oracle's answer."""

    def __init__(self, impl, case: Case, device: str | None = None, *, probes: int = 4, probe_seed: int = 0):
        self.impl: Implementation = resolve(impl)
        self.case = case
        self.device = device or self.impl.default_device()
        self.probes = probes
        self.probe_seed = probe_seed

    @property
    def dtype(self) -> str:
        return self.case.dtype

    def prepare(self, case: Case):
        try:
            prepared = self.impl.prepare(case.spec, case.params, dtype=case.dtype, device=self.device)
        except Exception as exc:
            raise ImplementationRaised(_summarise(exc, "prepare")) from exc
        if self.impl.capabilities.input_grad:
            prepared.input_grad = True  # so that input_gradient can judge dx
        return prepared

    def step(self, prepared, case: Case) -> StepResult:
        try:
            result = prepared.to_numpy(prepared.step(prepared.batch(case.x, case.y)))
        except Exception as exc:
            raise ImplementationRaised(_summarise(exc, "step")) from exc
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
        c = self.case
        return oracle.expected(c.spec, c.params, c.x, c.y, self.dtype)

    def repro(self) -> str:
        where = self.case.recipe or "--case-file CASE.npz"
        device = f" --device {self.device}" if self.device != self.impl.default_device() else ""
        return f"backprop-harness check --impl {self.impl.name} {where}{device}"


def _summarise(exc: BaseException, phase: str) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{phase} raised {type(exc).__name__}: {exc}{where}"


def _result(trial: Trial, check: str, verdict: Verdict, message: str = "", **kw) -> CheckResult:
    return CheckResult(
        check=check,
        impl=trial.impl.name,
        case=trial.case.describe(),
        verdict=verdict,
        message=message,
        seed=trial.case.seed,
        repro=trial.repro() if not verdict.ok else "",
        **kw,
    )


def tensor_names(n_layers: int) -> list[str]:
    return [f"layer {i} {kind}" for i in range(n_layers) for kind in ("W", "b")]


def _flat(pairs) -> list:
    return [a for pair in pairs for a in pair]


def _judged_dtype(trial: Trial, arrays) -> str:
    """The precision an answer is judged at: the coarser of the requested dtype and the
    float dtypes actually returned (a float32 answer to a float64 request is a dtype
    error, reported by gradient_dtypes, not a gradient error)."""
    dtype = trial.dtype
    for a in arrays:
        d = np.asarray(a).dtype
        if d.kind == "f" and d.itemsize >= 4:
            dtype = coarser(dtype, d)
    return dtype


def _shapes_ok(grads, case: Case) -> bool:
    return len(grads) == case.spec.n_layers and all(np.shape(g) == p.shape for g, p in zip(_flat(grads), _flat(case.params)))


# --- contract -------------------------------------------------------------------


def check_outputs_are_finite(trial: Trial) -> CheckResult:
    """The loss is a finite scalar and every gradient element is finite."""
    name = "outputs_are_finite"
    result, _ = trial.first
    loss = np.asarray(result.loss)
    if loss.size != 1:
        return _result(trial, name, Verdict.FAIL, f"loss has shape {loss.shape}, expected a scalar")
    if not np.isfinite(loss).all():
        return _result(
            trial, name, Verdict.FAIL, f"loss is {float(loss.reshape(()))}, expected a finite number",
            hint=hints.nonfinite_hint(trial.case),
        )
    bad = []
    for tname, g in zip(tensor_names(trial.case.spec.n_layers), _flat(result.grads)):
        g = np.asarray(g)
        if g.dtype.kind in "fc" and not np.isfinite(g).all():
            bad.append(f"{tname} has {int((~np.isfinite(g)).sum())} non-finite elements")
    if bad:
        return _result(trial, name, Verdict.FAIL, "; ".join(bad), hint=hints.nonfinite_hint(trial.case))
    return _result(trial, name, Verdict.PASS)


def check_gradient_shapes(trial: Trial) -> CheckResult:
    """One ``(dW, db)`` per layer, each shaped like its parameter."""
    name = "gradient_shapes"
    result, _ = trial.first
    spec = trial.case.spec
    if len(result.grads) != spec.n_layers:
        return _result(trial, name, Verdict.FAIL, f"{len(result.grads)} gradient pairs, expected {spec.n_layers} (one (dW, db) per layer)")
    wrong = []
    for tname, g, p in zip(tensor_names(spec.n_layers), _flat(result.grads), _flat(trial.case.params)):
        if np.shape(g) != p.shape:
            wrong.append(f"{tname} has shape {np.shape(g)}, expected {p.shape}")
    if wrong:
        hint = "a gradient shaped like its parameter's transpose: transposed?" if any(
            np.shape(g) == p.shape[::-1] and p.ndim == 2 for g, p in zip(_flat(result.grads), _flat(trial.case.params))
        ) else ""
        return _result(trial, name, Verdict.FAIL, "; ".join(wrong), hint=hint)
    return _result(trial, name, Verdict.PASS)


def check_gradient_dtypes(trial: Trial) -> CheckResult:
    """Every gradient comes back in the dtype that was asked for."""
    name = "gradient_dtypes"
    result, _ = trial.first
    wrong = [
        f"{tname} is {np.asarray(g).dtype}"
        for tname, g in zip(tensor_names(trial.case.spec.n_layers), _flat(result.grads))
        if np.asarray(g).dtype != np.dtype(trial.dtype)
    ]
    if wrong:
        return _result(trial, name, Verdict.FAIL, f"{'; '.join(wrong)}, expected {trial.dtype} (the dtype of the inputs)")
    return _result(trial, name, Verdict.PASS)


def check_inputs_not_mutated(trial: Trial) -> CheckResult:
    """Parameters, x and y are unchanged after a step."""
    name = "inputs_not_mutated"
    _, working = trial.first
    pristine = trial.case
    changed = []
    pairs = list(zip(tensor_names(pristine.spec.n_layers), _flat(working.params), _flat(pristine.params)))
    pairs += [("x", working.x, pristine.x), ("y", working.y, pristine.y)]
    for label, after, before in pairs:
        if after.shape != before.shape or not np.array_equal(after, before, equal_nan=True):
            n = int((after != before).sum()) if after.shape == before.shape else after.size
            changed.append(f"{label.replace('layer', 'param layer')} ({n} elements changed)")
    if changed:
        return _result(trial, name, Verdict.FAIL, f"inputs modified by the step: {', '.join(changed)}",
                       hint="copy before updating in place (e.g. x = x.copy(), or out= on a fresh array)")
    return _result(trial, name, Verdict.PASS)


def _agreement(a: StepResult, b: StepResult, rel: float) -> str | None:
    """Why two results of identical calls differ beyond ``rel``, or ``None``."""
    pairs = [("loss", np.asarray(a.loss), np.asarray(b.loss))]
    pairs += [(f"gradient {i}", np.asarray(x), np.asarray(y)) for i, (x, y) in enumerate(zip(_flat(a.grads), _flat(b.grads)))]
    for label, x, y in pairs:
        if x.shape != y.shape:
            return f"{label} changed shape from {x.shape} to {y.shape}"
        if rel == 0.0:
            if not np.array_equal(x, y, equal_nan=True):
                return f"{label} differs: max abs difference {float(np.max(np.abs(x.astype(float) - y))):.3g} (expected bitwise equal)"
        elif not np.allclose(x, y, rtol=rel, atol=rel * float(np.max(np.abs(x), initial=0.0))):
            return f"{label} differs beyond the declared nondeterminism {rel:g}"
    return None


def check_deterministic(trial: Trial) -> CheckResult:
    """Two identical calls agree (bitwise, unless a tolerance is declared)."""
    name = "deterministic"
    first, _ = trial.first
    second = trial.call()
    why = _agreement(first, second, trial.impl.capabilities.nondeterminism)
    if why:
        return _result(trial, name, Verdict.FAIL, f"two identical calls disagree: {why}",
                       hint="declare Capabilities(nondeterminism=...) if this is intended")
    return _result(trial, name, Verdict.PASS)


def check_no_state_between_calls(trial: Trial) -> CheckResult:
    """A, then B, then A again gives the first A's answer (same and fresh prepares)."""
    name = "no_state_between_calls"
    case_a = trial.case
    first, _ = trial.first
    other = _other_batch(case_a)
    working = case_a.copy()
    prepared = trial.prepare(working)
    trial.step(prepared, working)
    between = trial.step(prepared, other.copy())
    stale = _stale(trial, other, between)
    if stale:
        return _result(trial, name, Verdict.FAIL, f"A, then a different batch B on one prepared implementation: B's {stale}",
                       hint="a result cached from an earlier call (keyed by shape or by object identity?)")
    again = trial.step(prepared, case_a.copy())
    why = _agreement(first, again, trial.impl.capabilities.nondeterminism)
    if why:
        return _result(trial, name, Verdict.FAIL, f"A, B, A on one prepared implementation: {why}",
                       hint="state carried across steps: gradients accumulated and never zeroed, or a cached batch?")
    # A fresh prepare of other parameters in between must not leak either.
    trial.call(_other_params(case_a))
    again = trial.call()
    why = _agreement(first, again, trial.impl.capabilities.nondeterminism)
    if why:
        return _result(trial, name, Verdict.FAIL, f"A, B, A with separate prepares: {why}",
                       hint="module-level state shared between prepared instances?")
    return _result(trial, name, Verdict.PASS)


def _stale(trial: Trial, other: Case, got: StepResult) -> str | None:
    """Why ``got``, the answer for ``other``, is wrong in a way that points at state:
    it is A's answer bit for bit, or wrong while A's own answer was right (a gradient
    that is wrong everywhere is gradients_match_reference's to report)."""
    if not _shapes_ok(got.grads, other) or _right(trial, other, got):
        return None
    first = trial.first[0]
    if _agreement(first, got, 0.0) is None:
        return "result equals A's bit for bit: A's answer was returned again"
    if _right(trial, trial.case, first):
        return "gradients are wrong although A's were right"
    return None


def _right(trial: Trial, case: Case, got: StepResult) -> bool:
    exp = trial.expected if case is trial.case else oracle.expected(case.spec, case.params, case.x, case.y, case.dtype)
    dtype = _judged_dtype(trial, _flat(got.grads))
    return all(
        compare_elementwise(g, c, r, sc, dtype=dtype, comparison="gradient", name=t).verdict is Verdict.PASS
        for t, g, c, r, sc in zip(tensor_names(case.spec.n_layers), _flat(got.grads), _flat(exp.center), _flat(exp.radius), _flat(exp.scale))
    )


def _other_batch(case: Case) -> Case:
    rng = np.random.default_rng((case.seed or 0) + 7919)
    x = rng.normal(0.0, 1.0, case.x.shape).astype(case.x.dtype)
    if case.spec.loss == "cross_entropy":
        y = rng.integers(0, case.spec.sizes[-1], case.y.shape).astype(case.y.dtype)
    else:
        y = rng.normal(0.0, 1.0, case.y.shape).astype(case.y.dtype)
    return Case(case.spec, case.params, x, y, case.seed, case.label, case.recipe)


def _other_params(case: Case) -> Case:
    rng = np.random.default_rng((case.seed or 0) + 104729)
    params = tuple(((W * rng.uniform(0.5, 1.5, W.shape)).astype(W.dtype), (b + 0.1).astype(b.dtype)) for W, b in case.params)
    other = _other_batch(case)
    return Case(case.spec, params, other.x, other.y, case.seed, case.label, case.recipe)


# --- values against the oracle -----------------------------------------------


def check_loss_matches_reference(trial: Trial) -> CheckResult:
    """The loss agrees with the float64 reference to the dtype's rounding."""
    name = "loss_matches_reference"
    result, _ = trial.first
    got = float(np.asarray(result.loss, np.float64).reshape(()))
    exp = trial.expected
    tol = float(tolerance(_judged_dtype(trial, [result.loss]), "loss", exp.loss_scale))
    err = abs(got - exp.loss)
    if not err <= tol:
        ratio = got / exp.loss if exp.loss else math.inf
        return _result(
            trial, name, Verdict.FAIL,
            f"loss={got:.12g}, but should be {exp.loss:.12g} (abs error {err:.3g} > tolerance {tol:.3g})",
            hint=hints.ratio_hint(np.array([ratio]), trial.case.batch) if np.isfinite(ratio) else "",
        )
    return _result(trial, name, Verdict.PASS, f"abs error {err:.3g} <= {tol:.3g}")


def compare_elementwise(got, center, radius, scale, *, dtype, comparison, name) -> TensorReport:
    """Judge ``got`` element by element against ``center +- radius`` with the dtype's
    tolerance; elements with ``radius > 0`` are non-differentiable and pass anywhere
    inside their bracket."""
    got = np.asarray(got, np.float64)
    tol = tolerance(dtype, comparison, scale)
    deviation = np.abs(got - center)
    excess = np.maximum(deviation - radius, 0.0)
    excess = np.where(np.isnan(got), np.inf, excess)
    failed = excess > tol
    # relative to the expected magnitude, or to the tolerance where that is ~0
    rel = deviation / np.maximum(np.abs(center), tol)
    report = TensorReport(
        name=name,
        verdict=Verdict.FAIL if failed.any() else Verdict.PASS,
        max_abs_error=float(np.max(deviation, initial=0.0)),
        max_rel_error=float(np.max(np.where(deviation > 0, rel, 0.0), initial=0.0)),
        n_elements=int(got.size),
        n_failed=int(failed.sum()),
        n_nondifferentiable=int((radius > 0).sum()),
    )
    badness = (excess / tol).ravel()
    top = np.argpartition(-badness, WORST_SHOWN)[:WORST_SHOWN] if badness.size > WORST_SHOWN else np.arange(badness.size)
    for flat in top[np.argsort(-badness[top], kind="stable")]:
        if report.verdict is Verdict.PASS and badness[flat] == 0:
            break
        idx = np.unravel_index(flat, got.shape)
        r = float(radius[idx])
        report.worst.append(
            Coordinate(
                index=tuple(int(i) for i in idx),
                got=float(got[idx]),
                expected=float(center[idx]),
                tolerance=float(tol[idx]),
                bracket=(float(center[idx]) - r, float(center[idx]) + r) if r > 0 else None,
            )
        )
    return report


def check_gradients_match_reference(trial: Trial) -> CheckResult:
    """Every gradient element agrees with the reference backprop, to the dtype's
    rounding; at kinks, it lies in the bracket of one-sided derivatives."""
    name = "gradients_match_reference"
    result, _ = trial.first
    exp = trial.expected
    spec = trial.case.spec
    if not _shapes_ok(result.grads, trial.case):
        return _result(trial, name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    dtype = _judged_dtype(trial, _flat(result.grads))
    reports = [
        compare_elementwise(g, c, r, s, dtype=dtype, comparison="gradient", name=tname)
        for tname, g, c, r, s in zip(
            tensor_names(spec.n_layers), _flat(result.grads), _flat(exp.center), _flat(exp.radius), _flat(exp.scale)
        )
    ]
    failing = [t for t in reports if t.verdict is Verdict.FAIL]
    n_nondiff = sum(t.n_nondifferentiable for t in reports)
    note = f"; {n_nondiff} non-differentiable elements judged by their bracket" if n_nondiff else ""
    if failing:
        total = sum(t.n_failed for t in failing)
        return _result(
            trial, name, Verdict.FAIL,
            f"{total} of {spec.n_params} gradient elements outside tolerance in {', '.join(t.name for t in failing)}{note}",
            tensors=reports,
            hint=hints.gradient_hint(
                reports, _flat(result.grads), _flat(exp.center), trial.case.batch, spec.sizes[-1],
                float32_sized=dtype == "float64" and _within_float32(result, exp, spec),
            ),
        )
    return _result(trial, name, Verdict.PASS, f"all {spec.n_params} elements within tolerance{note}", tensors=reports)


def _within_float32(result, exp, spec) -> bool:
    return all(
        compare_elementwise(g, c, r, s, dtype="float32", comparison="gradient", name=t).verdict is Verdict.PASS
        for t, g, c, r, s in zip(tensor_names(spec.n_layers), _flat(result.grads), _flat(exp.center), _flat(exp.radius), _flat(exp.scale))
    )


def check_input_gradient(trial: Trial) -> CheckResult:
    """dL/dx (for implementations that declare ``input_grad``) agrees with the reference."""
    name = "input_gradient"
    if not trial.impl.capabilities.input_grad:
        return _result(trial, name, Verdict.SKIP, "the implementation does not declare input_grad")
    result, _ = trial.first
    exp = trial.expected
    if result.dx is None:
        return _result(trial, name, Verdict.FAIL, "input_grad is declared, but the step returned no dx")
    if np.shape(result.dx) != trial.case.x.shape:
        return _result(trial, name, Verdict.FAIL, f"dx has shape {np.shape(result.dx)}, expected {trial.case.x.shape}")
    report = compare_elementwise(result.dx, exp.dx_center, exp.dx_radius, exp.dx_scale,
                                 dtype=trial.dtype, comparison="gradient", name="x")
    if report.verdict is Verdict.FAIL:
        return _result(trial, name, Verdict.FAIL, f"{report.n_failed} of {report.n_elements} elements of dx outside tolerance", tensors=[report])
    return _result(trial, name, Verdict.PASS, tensors=[report])


def check_gradient_probes(trial: Trial) -> CheckResult:
    """Directional derivatives along seeded random sign vectors agree with complex-step
    differentiation of the reference forward; a failing probe is bisected down to one
    tensor and index.

    This needs only the reference *forward*, so it also guards the reference backprop.
    Detection bound: a probe's tolerance is ``16 eps sqrt(sum (scale_i v_i)^2)`` (plus
    the kink brackets); one wrong element whose error exceeds it is caught by every
    probe, whatever the model size, since a single term cannot cancel; several wrong
    elements escape one probe with probability at most 1/2, so k probes miss them with
    probability at most 2**-k.
    """
    name = "gradient_probes"
    result, _ = trial.first
    case, exp = trial.case, trial.expected
    if not _shapes_ok(result.grads, case):
        return _result(trial, name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    got = [np.asarray(g, np.float64) for g in _flat(result.grads)]
    scales, radii = _flat(exp.scale), _flat(exp.radius)
    dtype = _judged_dtype(trial, _flat(result.grads))
    rng = np.random.default_rng(trial.probe_seed)
    worst = 0.0
    for k in range(trial.probes):
        signs = [rng.choice(np.array([-1.0, 1.0]), g.shape) for g in got]
        masks = [np.ones(g.shape, bool) for g in got]
        disc, tol = _probe(case, got, scales, radii, signs, masks, dtype)
        worst = max(worst, disc / tol)
        if disc > tol:
            where, d, t = _bisect(case, got, scales, radii, signs, dtype)
            tname = tensor_names(case.spec.n_layers)[where[0]]
            idx = np.unravel_index(where[1], got[where[0]].shape)
            idx = tuple(int(i) for i in idx)
            return _result(
                trial, name, Verdict.FAIL,
                f"probe {k} (seed {trial.probe_seed}): directional derivative off by {disc:.3g} (tolerance {tol:.3g}); "
                f"bisection localises it to {tname} [{', '.join(map(str, idx))}] (off by {d:.3g}, tolerance {t:.3g})",
            )
    return _result(trial, name, Verdict.PASS, f"{trial.probes} probes (seed {trial.probe_seed}), worst at {worst:.2g} of tolerance")


def _probe(case, got, scales, radii, signs, masks, dtype):
    """|impl's directional derivative - oracle's| and its tolerance along signs*masks."""
    v = [s * m for s, m in zip(signs, masks)]
    direction = [(v[i], v[i + 1]) for i in range(0, len(v), 2)]
    want = oracle.directional_derivative(case.spec, case.params, case.x, case.y, direction)
    have = math.fsum(float(np.dot(g.ravel(), d.ravel())) for g, d in zip(got, v))
    spread = math.sqrt(math.fsum(float(np.sum((s * m) ** 2)) for s, m in zip(scales, masks)))
    bracket = math.fsum(float(np.sum(r * m)) for r, m in zip(radii, masks))
    # The complex step's own truncation error is O(h^2 f'''); (1 + P)^3 h^2 bounds it generously
    # and is still ~1e-183 at the seed size, far below any gradient worth the name.
    truncation = (1 + sum(int(m.sum()) for m in masks)) ** 3 * COMPLEX_STEP**2
    tol = (factor(dtype, "probe") * eps(dtype) * spread + 2 * bracket
           + factor("float64", "probe") * eps("float64") * abs(want) + truncation)
    return abs(have - want), max(tol, np.finfo(np.float64).tiny)


def _bisect(case, got, scales, radii, signs, dtype):
    """Halve the probe's support, following the half whose discrepancy is largest
    relative to its tolerance, until one element is left: ``((tensor, flat), disc, tol)``."""
    segments = [(t, 0, got[t].size) for t in range(len(got))]
    while True:
        total = sum(stop - start for _, start, stop in segments)
        if total == 1:
            t, start, _ = segments[0]
            masks = _masks(got, segments)
            disc, tol = _probe(case, got, scales, radii, signs, masks, dtype)
            return (t, start), disc, tol
        halves = _split(segments, total // 2)
        scored = []
        for half in halves:
            disc, tol = _probe(case, got, scales, radii, signs, _masks(got, half), dtype)
            scored.append((disc / tol, half))
        segments = max(scored, key=lambda s: s[0])[1]


def _split(segments, count):
    left, right, seen = [], [], 0
    for t, start, stop in segments:
        n = stop - start
        if seen + n <= count:
            left.append((t, start, stop))
        elif seen >= count:
            right.append((t, start, stop))
        else:
            cut = start + (count - seen)
            left.append((t, start, cut))
            right.append((t, cut, stop))
        seen += n
    return left, right


def _masks(got, segments):
    masks = [np.zeros(g.size, bool) for g in got]
    for t, start, stop in segments:
        masks[t][start:stop] = True
    return [m.reshape(g.shape) for m, g in zip(masks, got)]


# --- properties that need no oracle -------------------------------------------


def _subcase(case: Case, index) -> Case:
    return Case(case.spec, case.params, case.x[index], case.y[index], case.seed, case.label, case.recipe)


def _compare_property(trial: Trial, name: str, law: str, got_pairs, want_pairs) -> CheckResult:
    if not (_shapes_ok(got_pairs, trial.case) and _shapes_ok(want_pairs, trial.case)):
        return _result(trial, name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    exp = trial.expected
    spec = trial.case.spec
    dtype = _judged_dtype(trial, _flat(got_pairs) + _flat(want_pairs))
    reports = [
        compare_elementwise(g, np.asarray(w, np.float64), 2 * r, s, dtype=dtype, comparison="property", name=tname)
        for tname, g, w, r, s in zip(tensor_names(spec.n_layers), _flat(got_pairs), _flat(want_pairs), _flat(exp.radius), _flat(exp.scale))
    ]
    failing = [t for t in reports if t.verdict is Verdict.FAIL]
    if failing:
        return _result(trial, name, Verdict.FAIL, f"{law} fails in {', '.join(t.name for t in failing)}", tensors=reports,
                       hint=hints.property_hint(name, reports))
    return _result(trial, name, Verdict.PASS, tensors=reports)


def check_batch_gradient_is_mean_of_samples(trial: Trial) -> CheckResult:
    """The batch gradient equals the mean of the single-sample gradients."""
    name = "batch_gradient_is_mean_of_samples"
    case = trial.case
    if case.batch < 2:
        return _result(trial, name, Verdict.SKIP, "batch of 1")
    first, _ = trial.first
    working = case.copy()
    prepared = trial.prepare(working)  # one prepare: the samples share the parameters
    singles = [trial.step(prepared, _subcase(working, slice(n, n + 1))) for n in range(case.batch)]
    if not all(_shapes_ok(s.grads, case) for s in [first, *singles]):
        return _result(trial, name, Verdict.SKIP, "gradient shapes are wrong (see gradient_shapes)")
    mean = [
        (sum(np.asarray(s.grads[i][0], np.float64) for s in singles) / case.batch,
         sum(np.asarray(s.grads[i][1], np.float64) for s in singles) / case.batch)
        for i in range(len(first.grads))
    ]
    return _compare_property(trial, name, "mean of per-sample gradients == batch gradient", first.grads, mean)


def check_batch_permutation_invariant(trial: Trial) -> CheckResult:
    """Permuting the batch (x and y together) leaves the gradient unchanged."""
    name = "batch_permutation_invariant"
    case = trial.case
    if case.batch < 2:
        return _result(trial, name, Verdict.SKIP, "batch of 1")
    first, _ = trial.first
    order = np.random.default_rng((case.seed or 0) + 31).permutation(case.batch)
    if np.all(order == np.arange(case.batch)):
        order = np.roll(order, 1)
    permuted = trial.call(_subcase(case, order))
    return _compare_property(trial, name, "gradient of the permuted batch == gradient of the batch", permuted.grads, first.grads)


def check_batch_duplication_invariant(trial: Trial) -> CheckResult:
    """Stacking the batch on itself leaves the (mean) gradient unchanged."""
    name = "batch_duplication_invariant"
    case = trial.case
    first, _ = trial.first
    doubled = trial.call(_subcase(case, np.concatenate([np.arange(case.batch)] * 2)))
    return _compare_property(trial, name, "gradient of the batch twice over == gradient of the batch", doubled.grads, first.grads)


CONTRACT_CHECKS = (
    check_outputs_are_finite,
    check_gradient_shapes,
    check_gradient_dtypes,
    check_inputs_not_mutated,
    check_deterministic,
    check_no_state_between_calls,
)
VALUE_CHECKS = (check_loss_matches_reference, check_gradients_match_reference, check_input_gradient, check_gradient_probes)
PROPERTY_CHECKS = (check_batch_gradient_is_mean_of_samples, check_batch_permutation_invariant, check_batch_duplication_invariant)
ALL_CHECKS = CONTRACT_CHECKS + VALUE_CHECKS + PROPERTY_CHECKS


def check_name(check) -> str:
    return check.__name__.removeprefix("check_")


def run_check(check, trial: Trial) -> CheckResult:
    """Run one check; an implementation that raises becomes an ERROR result."""
    start = time.perf_counter()
    try:
        result = check(trial)
    except ImplementationRaised as exc:
        result = _result(trial, check_name(check), Verdict.ERROR, str(exc))
    except Exception as exc:  # output the check could not even read: still the implementation's error
        result = _result(trial, check_name(check), Verdict.ERROR, f"could not evaluate the output: {_summarise(exc, 'check')}")
    result.seconds = time.perf_counter() - start
    return result


def run_checks(impl, case: Case, *, device: str | None = None, checks=ALL_CHECKS, probes: int = 4, probe_seed: int = 0) -> list[CheckResult]:
    """Every applicable check of ``impl`` on ``case``: the library call behind the CLI.

    An unsupported case (by declared capabilities) or an unavailable implementation
    gives a single SKIP result with the reason."""
    trial = Trial(impl, case, device, probes=probes, probe_seed=probe_seed)
    reason = trial.impl.unavailable_reason(trial.device) or trial.impl.capabilities.unsupported(case.spec, case.dtype)
    if reason:
        return [_result(trial, "applicable", Verdict.SKIP, reason)]
    return [run_check(check, trial) for check in checks]
