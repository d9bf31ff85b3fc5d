"""The complex step of ``harness.core.directional.Differentiator``: ``Im f(x + i h w) / h``,
exact to rounding with no subtraction, where the forward is analytic on complex inputs.

That is detected, never assumed: the forward must run on complex inputs without
dropping the imaginary part (NumPy's ComplexWarning is an error), keep its real part,
and agree with the right-hand Richardson derivative along random directions (through a
random contraction of the outputs) within that estimate's error: along two directions
sparse enough that kinks rarely fall within Richardson's steps; over a large input
along one, or along a direction a probe has already differenced finely enough
(``detect_complex_along``: the JVP check's tangent, whose complex evaluation the probe
then keeps), at no evaluation of its own.
"""

from __future__ import annotations

import warnings

import numpy as np

from harness.core.vectors import COMPLEX_H, complex_point, inner, largest, signed

# Above this many input elements the complex step is cross-checked along one direction,
# not two: a complex forward there costs 10 to 30 real ones.
CROSS_CHECK_ONE = 2**16
# One-sided derivatives further apart than this many error estimates (plus rounding)
# mark a kink: the estimates are conservative (they measure the lower-order entry).
KINK_FACTOR = 4.0


class ComplexStep:
    """The complex-step half of a ``Differentiator`` (which supplies ``inputs``,
    ``outputs``, ``float_outputs``, ``differentiable``, ``scales``, ``evaluations``,
    ``_call``, ``_kept`` and ``contracted``)."""

    _complex = None  # (analytic, why not, directions cross-checked), once decided
    _complex_buffers = None  # complex128 inputs reused by complex_contracted

    def complex_right(self, direction, shift: float = 0.0) -> list:
        """``Im f(x + t w + i h w) / h`` for every float output at ``t = shift`` (only
        where ``complex_ok``)."""
        kept = self._kept(direction) if shift == 0 else None
        if kept is not None and "complex" in kept:
            return kept["complex"]
        moved = [x.copy() if w is None else complex_point(x, w, shift) for x, w in zip(self.inputs, direction)]
        self.evaluations += 1
        derivatives = self._derivatives(self._complex_call(moved))
        if kept is not None:
            kept["complex"] = derivatives
        return derivatives

    def _derivatives(self, out) -> list:
        """``Im y / h`` for every float output ``y`` of a complex evaluation."""
        return [np.imag(out[i]) / COMPLEX_H for i in self.float_outputs]

    def complex_contracted(self, direction, weights) -> float:
        """``<c, Im f(x + i h w)> / h`` (weights c: one array per float output): the complex
        step's right-hand derivative of ``<c, f>``, without an array of the derivatives
        (only where ``complex_ok``). The complex inputs are written into buffers kept from
        one call to the next, and each output is contracted before the next call: a
        million-element probe otherwise pays for fresh pages."""
        if self._kept(direction) is not None:  # a shared direction keeps its derivatives
            return sum(inner(c, d) for c, d in zip(weights, self.complex_right(direction)))
        if self._complex_buffers is None:
            # their real parts written once: the forward gets them read-only (_complex_call),
            # so they stay x, and each probe writes only the imaginary parts
            self._complex_buffers = [None if not d else complex_point(x, np.zeros(()), 0.0)
                                     for x, d in zip(self.inputs, self.differentiable)]
        moved = []
        for x, w, b in zip(self.inputs, direction, self._complex_buffers):
            if w is None:
                moved.append(x.copy())
                continue
            b.flags.writeable = True  # (the buffer owns its memory: ours to write again)
            np.multiply(w, COMPLEX_H, out=b.imag)
            moved.append(b)
        self.evaluations += 1
        out = self._complex_call(moved)
        # Im f / h then the contraction, not <c, Im f> / h: the same products, summed in
        # the same order, as the VJP's <g, w> where they agree (an elementwise mapping):
        # a dot product over a strided imaginary part sums in another order, whose
        # rounding over a million terms is not in a float64 probe's tolerance
        return sum(inner(c, np.imag(out[i]) / COMPLEX_H) for c, i in zip(weights, self.float_outputs))

    @staticmethod
    def _sparse_signs(rng, scale):
        direction = np.zeros(scale.shape)
        chosen = rng.choice(scale.size, 64, replace=False) if scale.size > 64 else np.arange(scale.size)
        direction.flat[chosen] = scale.flat[chosen] * rng.choice(np.array([-1.0, 1.0]), chosen.size)
        return direction

    def _complex_call(self, arrays):
        """The forward on complex points, handed over read-only: a forward that writes into
        its input (which inputs_not_mutated fails) cannot move the point of a later complex
        evaluation (complex_contracted's buffers keep their real parts); it raises here,
        and the complex step is not used."""
        for a in arrays:
            if a.dtype.kind == "c":
                a.flags.writeable = False
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            return self._call(arrays)

    @property
    def complex_ok(self) -> bool:
        if self._complex is None:
            self._complex = self._detect_complex()
        return self._complex[0]

    @property
    def method(self) -> str:
        """How derivatives are taken here, in words (detecting the complex step if not yet done)."""
        if self.complex_ok:
            return f"complex step (checked against Richardson along {self._complex[2]} direction" + \
                ("s)" if self._complex[2] > 1 else ")")
        return f"Richardson-extrapolated differences ({self._complex[1]})"

    def _complex_problem(self, out) -> str:
        """Why the outputs of a complex evaluation show the forward is not analytic there
        ("" where they do not): an output real, reshaped, or with its real part moved."""
        for o, i in enumerate(self.float_outputs):
            y = out[i] if i < len(out) else None
            if y is None or np.asarray(y).dtype.kind != "c":
                return f"output {i} comes back real on complex inputs (the imaginary part is dropped)"
            y = np.asarray(y)
            if y.shape != self.outputs[o].shape:
                return f"output {i} changes shape on complex inputs"
            f0 = self.outputs[o]
            with np.errstate(invalid="ignore"):  # (an equal real part needs no tolerance: one pass)
                if not np.array_equal(y.real, f0) and np.any(np.abs(y.real - f0) > 1e-9 * (largest(f0) + np.abs(f0))):
                    return f"output {i}'s real part changes on complex inputs"
        return ""

    def _comparison_scale(self, value, weights) -> float:
        """The scale a complex step and Richardson are compared on along a direction:
        ``|value| + <|c|, |f(x)|>``. A forward that is not analytic is off by the
        derivative itself, far beyond 1e-7 of it."""
        return abs(value) + sum(inner(np.abs(w), np.abs(f0)) for w, f0 in zip(weights, self.outputs))

    @property
    def _large(self) -> bool:
        """More than ``CROSS_CHECK_ONE`` float input elements: one direction is cross-checked."""
        return sum(x.size for x, d in zip(self.inputs, self.differentiable) if d) > CROSS_CHECK_ONE

    def _trial_evaluation(self, direction):
        """``(outputs, "")`` of the forward at ``x + i h w``, or ``(None, why)`` where they show
        it is not analytic (it raised; ``_complex_problem``)."""
        moved = [x.copy() if w is None else complex_point(x, w, 0.0) for x, w in zip(self.inputs, direction)]
        try:
            out = self._complex_call(moved)
        except Exception as exc:
            return None, f"the forward does not run on complex inputs: {type(exc).__name__}: {str(exc)[:120]}"
        self.evaluations += 1
        problem = self._complex_problem(out)
        return (None, problem) if problem else (out, "")

    @staticmethod
    def _disagreement(cs, value, err, scale) -> str:
        """Why the complex step's ``cs`` and Richardson's ``value`` (error ``err``) along the
        same direction show the forward is not analytic ("" where they agree)."""
        if np.isfinite(value) and abs(cs - value) > KINK_FACTOR * err + 1e-7 * scale:
            return (f"complex step {cs:.9g} and Richardson {value:.9g} (error {err:.2g}) disagree along a "
                    "random direction: the forward is not analytic")
        return ""

    def detect_complex_along(self, direction, weights, value: float, err: float) -> None:
        """Decide ``complex_ok`` along a direction already differenced by Richardson
        (``value``, ``err``: the right-hand derivative of ``<weights, f>``), where that is
        still undecided and the input is large (one direction would be cross-checked):
        the complex evaluation along it is the one a probe along it then takes (kept for
        a shared direction), so the cross-check costs no evaluation of its own. Only where
        Richardson resolved the value to 1e-7 of the comparison's scale, as finely as
        ``_detect_complex``'s sparse direction does (else that runs, as before)."""
        kept = self._kept(direction)
        if self._complex is not None or kept is None or "complex" in kept or not np.isfinite(err) or not self._large:
            return
        scale = self._comparison_scale(value, weights)
        if not KINK_FACTOR * err <= 1e-7 * scale:
            return
        out, why = self._trial_evaluation(direction)
        if out is not None:
            derivatives = self._derivatives(out)
            why = self._disagreement(sum(inner(c, d) for c, d in zip(weights, derivatives)), value, err, scale)
        if why:
            self._complex = (False, why)
            return
        kept["complex"] = derivatives
        self._complex = (True, "", 1)

    def _detect_complex(self):
        rng = np.random.default_rng(20240611)
        count = 1 if self._large else 2
        for _ in range(count):
            # Random signs on at most 64 elements of each input: few enough that kinks
            # (relu over a million elements) rarely fall within Richardson's steps.
            direction = [None if s is None else self._sparse_signs(rng, s) for s in self.scales]
            out, why = self._trial_evaluation(direction)
            if out is None:
                return False, why
            weights = [signed(rng, np.ones(f0.shape)) for f0 in self.outputs]
            cs = sum(inner(weights[o], np.asarray(out[i]).imag) / COMPLEX_H for o, i in enumerate(self.float_outputs))
            # Compared through a random contraction of the outputs: an element whose kink
            # lies within Richardson's steps widens that estimate's error instead of
            # failing the comparison, and a forward that is not analytic is off by the
            # derivative itself (1e-7 of the contraction's scale is far below that).
            # 3 levels resolve the comparison to about 1e-8 of its scale, below the 1e-7 it allows
            value, err = self.contracted(direction, weights, levels=3)
            why = self._disagreement(cs, value, err, self._comparison_scale(value, weights))
            if why:
                return False, why
        return True, "", count
