"""Float64 directional derivatives of any forward, without its backward.

``Differentiator`` holds a forward at one point (float inputs in float64, whatever
dtype the implementation runs in) and differentiates every float output along a
direction ``w`` (one array per float input):

- Richardson-extrapolated difference quotients (``harness.core.finite_differences``)
  with an error estimate per output element: ``right`` (one-sided, f(x + h w)) and
  ``sides`` (both one-sided derivatives and the central one from the same points).
  Steps start at ``FIRST_STEP`` times each element's scale (the spread of its input),
  kept inside declared bounds, and halve per level.
- The complex step ``Im f(x + i h w) / h`` (no subtraction: exact to rounding) where
  the forward is analytic on complex inputs: detected, never assumed
  (``harness.core.complex_step``).
  NumPy orders complex numbers by real part first, so max, sort and ``x > 0`` stay
  usable: at an exact kink or tie they give the right-hand derivative, which is what
  the check compares against.

Where the one-sided derivatives of an output element disagree by more than their
error estimates, it is not differentiable along ``w``: ``judge`` reports the bracket
of the two one-sided values instead of a value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.core.complex_step import ComplexStep
from harness.core.finite_differences import CENTRAL, ONE_SIDED, extrapolate
from harness.core.vectors import inner, largest, spread_of

FIRST_STEP = 2.0**-9  # times an element's scale: the largest step of the tableau
# Steps below the spacing of kinks along a direction over many elements (relu over a
# million: about 1e-6 apart), where a piecewise-linear forward's quotient is exact but
# for rounding; used when the usual tableau cannot resolve a probe. 2^-22: a kink falls
# within it with probability about 0.2 at a million elements (then the two steps part
# and the error estimate says so), while its rounding stays below float32's tolerance.
SMALL_STEP = 2.0**-22
LEVELS_SIDES = 4  # steps h, h/2, h/4, h/8 on both sides: 8 evaluations
LEVELS_RIGHT = 4  # right-hand steps only: 4 evaluations, error O(h^4) before rounding
_EPS = float(np.finfo(np.float64).eps)


class ForwardFailed(Exception):
    """The forward raised (or gave no float output) at the point itself."""


@dataclass
class Derivative:
    """Derivatives of every float output along one direction: the right-hand one, and
    where computed the left-hand and central ones, each with an error estimate, and
    the complex step's exact right-hand value."""

    right: list
    right_error: list
    left: list | None = None
    left_error: list | None = None
    central: list | None = None
    central_error: list | None = None
    exact: list | None = None
    noise: list | None = None  # rounding of the difference quotients at the smallest step


class Differentiator(ComplexStep):
    """A forward at one point, differentiated along any direction in float64."""

    def __init__(self, forward, inputs, params, bounds=None):
        self.forward = forward
        self.params = dict(params)
        # The point, never handed to the forward (the case's own arrays where they are
        # float64 already): the forward gets copies of it, or the moved inputs, so that one
        # writing into its input neither moves the point nor changes the case
        self.inputs = [np.asarray(x, np.float64) if np.asarray(x).dtype.kind == "f" else np.asarray(x) for x in inputs]
        self.differentiable = [x.dtype.kind == "f" for x in self.inputs]
        from harness.core.mapping import copied

        try:
            outputs = list(copied(self._call([x.copy() for x in self.inputs])))
        except Exception as exc:
            raise ForwardFailed(f"the float64 forward raised {type(exc).__name__}: {exc}") from exc
        self.all_outputs = outputs  # every output, integer ones too (copies: see at)
        self.float_outputs = [i for i, y in enumerate(outputs) if y is not None and y.dtype.kind in "fc"]
        if not self.float_outputs:
            kinds = ", ".join("None" if y is None else f"{y.dtype} {y.shape}" for y in outputs)
            raise ForwardFailed(f"the float64 forward returned no float output ({kinds}); expected an array "
                                "of floats, or a tuple of arrays")
        self.outputs = [np.asarray(outputs[i], np.float64) for i in self.float_outputs]
        self.scales = [self._scale(x, b) for x, b in zip(self.inputs, bounds or [None] * len(self.inputs))]
        self.evaluations = 0
        self._complex = None
        self._peaks = {}  # largest of each float output, computed once (see peak)
        self._contractions = {}
        self._shared = None  # (key, direction, {step: (outputs, fingerprint), "complex": derivatives}): see share
        self._copy_kept = False  # whether kept answers are copies (once one was written into: _along)

    def _scale(self, x, bound):
        """Each element's step unit: the spread of its input (so a step is small against
        the data, whatever its offset), shrunk to stay inside declared bounds."""
        if x.dtype.kind != "f":
            return None
        spread = spread_of(x)
        if not spread > 0:
            spread = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
        scale = np.full(x.shape, spread if spread > 0 else 1.0)
        if bound is not None and (bound[0] is not None or bound[1] is not None):  # (no pass for (None, None))
            low, high = bound
            if low is not None:
                scale = np.minimum(scale, (x - low) / FIRST_STEP)
            if high is not None:
                scale = np.minimum(scale, (high - x) / FIRST_STEP)
            scale = np.maximum(scale, 0.0)
        return scale

    def peak(self, o: int) -> float:
        """``largest`` of float output ``o`` at the point, computed once."""
        if getattr(self, "_peaks", None) is None:
            self._peaks = {}
        if o not in self._peaks:
            self._peaks[o] = largest(self.outputs[o])
        return self._peaks[o]

    def _call(self, arrays):
        from harness.core.mapping import as_outputs

        with np.errstate(all="ignore"):
            return as_outputs(self.forward(*arrays, **self.params))

    def at(self, direction, t, buffers=None, own: bool = True) -> list:
        """Every float output at ``x + t * direction`` (NaN where the forward raised);
        ``buffers``, one per input, receive the moved inputs instead of new arrays. The
        outputs are the differentiator's own arrays (copies where the forward's would be
        kept: a forward that writes every answer into one buffer of its own overwrites
        them at its next call, and every quotient of the kept ones came out 0, so a zero
        VJP passed); ``own=False`` where the caller reads them before the next call (or,
        as ``_along`` does, checks them for writes before it reads them again)."""
        if buffers is None:  # t w + x (= x + t w exactly) in one fresh array, no temporary
            moved = [x.copy() if w is None else _shifted(x, w, t) for x, w in zip(self.inputs, direction)]
        else:
            moved = [x.copy() if w is None else np.add(x, np.multiply(w, t, out=b), out=b)
                     for x, w, b in zip(self.inputs, direction, buffers)]
        self.evaluations += 1
        try:
            out = self._call(moved)
            return [(_own if own else _float64)(out[i]) for i in self.float_outputs]
        except Exception:
            return [np.full(y.shape, np.nan) for y in self.outputs]

    def steps(self, levels, first=FIRST_STEP):
        return [first / 2**i for i in range(levels)]

    def share(self, key, direction) -> None:
        """Keep the outputs along ``direction`` (registered under ``key``): the JVP's
        tangent is also a probe direction, so the evaluations one check makes along it
        serve the other."""
        self._shared = (key, direction, {})

    def shared(self, key):
        """The direction registered under ``key`` (by identity), or None."""
        return self._shared[1] if self._shared is not None and self._shared[0] is key else None

    def kept_complex(self, direction) -> bool:
        """Whether the complex step along ``direction`` was taken and kept."""
        kept = self._kept(direction)
        return kept is not None and "complex" in kept

    def _kept(self, direction):
        return self._shared[2] if self._shared is not None and self._shared[1] is direction else None

    def right(self, direction, levels: int | None = None, first: float = FIRST_STEP, pick=None) -> Derivative:
        """The right-hand derivative d/dt f(x + t w) at t = 0+, by Richardson (``levels`` steps
        from ``first``; default: as many as kept for a shared direction, else LEVELS_RIGHT);
        ``pick``: per output, the flat indices of the only elements wanted."""
        kept = self._kept(direction)
        if levels is None:  # what a probe along it took (3 levels for float32), else the default
            levels = 3 if kept and all(h in kept for h in self.steps(3)) and not all(
                h in kept for h in self.steps(LEVELS_RIGHT)) else LEVELS_RIGHT
        hs = self.steps(levels, first)
        plus = [self._along(direction, h, kept) for h in hs]
        values, errors, noise = [], [], []
        for o, f0 in enumerate(self.outputs):
            take = (lambda a: a) if pick is None else (lambda a, i=pick[o]: np.ravel(a)[i])
            v, e = extrapolate([_quotient(take(p[o]), take(f0), h) for p, h in zip(plus, hs)], ONE_SIDED)
            values.append(v)
            errors.append(e)
            # rounding at the smallest step, as in sides_many: 16 eps max|f| / h
            peak = max([self.peak(o)] + [largest(p[o]) for p in plus])
            noise.append(np.where(np.isfinite(v), 16 * _EPS * peak / hs[-1], np.inf))
        return Derivative(values, errors, noise=noise)

    def contracted(self, direction, weights, levels: int = LEVELS_RIGHT, first_step: float = FIRST_STEP) -> tuple[float, float]:
        """The right-hand derivative of ``<weights, f(x + t w)>`` (weights: one array per
        float output) and its error estimate: the outputs are contracted before the
        tableau, so a probe of any size costs ``levels`` forward evaluations and a dot
        product each."""
        hs = self.steps(levels, first_step)
        quotients = []
        kept = self._kept(direction)
        buffers = [None if w is None else np.empty(x.shape) for x, w in zip(self.inputs, direction)]
        # <c, f(x + h w)> - <c, f(x)> rather than <c, f(x + h w) - f(x)>: one pass less
        # per step; the contraction's own rounding (about eps sqrt(n) |c f|) stays far
        # below the noise term below
        here, spread = self._contraction(weights)
        for h in hs:
            # x + h w into reused buffers: a million-element probe otherwise pays for
            # fresh pages at every step; each output is consumed before the next step
            moved = self._along(direction, h, kept, buffers, own=False)
            quotients.append((sum(inner(c, m) for c, m in zip(weights, moved)) - here) / h)
        value, error = extrapolate(quotients, ONE_SIDED)
        # Rounding of each contracted difference at the smallest step: the outputs'
        # own roundings (16 eps max|f| each, see sides_many; independent) weighted by c, over h.
        noise = 16 * _EPS * spread / hs[-1]
        if not (np.isfinite(value) and np.isfinite(noise)):
            return float("nan"), float("inf")
        return float(value), float(error) + noise

    def _along(self, direction, h, kept, buffers=None, own: bool = True) -> list:
        """``at(direction, h)``, kept (or taken from what was kept) for a shared direction.
        The moved inputs go into ``buffers`` either way. A kept output is the forward's
        own array (never a view of the moved inputs, which the next step overwrites),
        with a fingerprint of its bits (``_fingerprint``: one read, where a copy is a read
        and a write): before it is read again, an answer something wrote into since (a
        forward that answers every call in one buffer of its own; a backward using the
        forward's answer as scratch) is taken again, and from then on every kept answer
        is a copy. Over a million elements most kept answers are never read again (the
        complex step replaces them), so their copies were a pass each for nothing."""
        if kept is None:
            return self.at(direction, h, buffers, own=own)
        entry = kept.get(h)
        if entry is not None and (entry[1] is None or entry[1] == _fingerprint(entry[0])):
            return entry[0]
        if entry is not None:
            self._copy_kept = True
        copy = self._copy_kept
        outputs = self.at(direction, h, buffers, own=copy)
        if not copy and buffers is not None:  # (a view of a moved input: the next step overwrites it)
            outputs = [_own(y) if any(b is not None and np.may_share_memory(y, b) for b in buffers) else y for y in outputs]
        kept[h] = (outputs, None if copy else _fingerprint(outputs))
        return outputs

    def _contraction(self, weights) -> tuple[float, float]:
        """``(<c, f(x)>, sqrt(sum_o max|f_o|^2 |c_o|^2))`` for weights c, computed once per
        set of weights (every probe of a check shares its cotangent)."""
        key = tuple(id(c) for c in weights)
        kept = self._contractions.get(key)
        if kept is None or any(a is not b for a, b in zip(kept[0], weights)):
            here = sum(inner(c, f0) for c, f0 in zip(weights, self.outputs))
            spread = math.sqrt(sum(self.peak(o) ** 2 * inner(c, c) for o, (c, _) in enumerate(zip(weights, self.outputs))))
            kept = self._contractions[key] = (list(weights), here, spread)
        return kept[1], kept[2]

    def sides(self, direction, levels: int = LEVELS_SIDES, exact: bool = True, first: float = FIRST_STEP) -> Derivative:
        """Right-hand, left-hand and central derivatives from the same points; with
        ``exact`` also the complex step, where the forward allows it. ``first``: the
        largest step, times the direction."""
        d = self.sides_many([direction], levels, exact, first=first)
        for name in ("right", "right_error", "left", "left_error", "central", "central_error", "exact", "noise"):
            if getattr(d, name) is not None:
                setattr(d, name, [a[0] for a in getattr(d, name)])
        return d

    def sides_many(self, directions, levels: int = LEVELS_SIDES, exact: bool = True, pick=None,
                   first: float = FIRST_STEP) -> Derivative:
        """``sides`` along several directions at once: every array gains a leading axis,
        one row per direction (each row extrapolated on its own). ``pick``: per output,
        flat indices of the only elements wanted (the evaluations are whole; the
        tableaux, the costly part over a million outputs, are not). ``first``: the
        largest step, times the direction."""
        hs = self.steps(levels, first)
        plus = [[self.at(direction, h) for direction in directions] for h in hs]  # [level][direction][output]
        minus = [[self.at(direction, -h) for direction in directions] for h in hs]
        d = Derivative([], [], [], [], [], [], noise=[])
        for o, f0 in enumerate(self.outputs):
            # Rounding of a quotient at the smallest step: 16 eps max|f| / h, the largest
            # value of the output (per row), not each element's own: a float64 forward is
            # accurate to eps times its intermediates, not its result (torch's gelu far in
            # its tail, 0.5 x (1 + erf(x / sqrt 2)), is 1% off and smooth: no tableau sees it).
            peak = max(self.peak(o), 0.0)
            peaks = np.array([max([peak] + [largest(level[k][o]) for level in plus + minus]) for k in range(len(directions))])
            take = (lambda a: a) if pick is None else (lambda a, i=pick[o]: np.ravel(a)[i])
            f0 = take(f0)
            p = [np.stack([take(e[o]) for e in level]) for level in plus]
            m = [np.stack([take(e[o]) for e in level]) for level in minus]
            for values, errors, quotients, power in (
                (d.right, d.right_error, [(pi - f0) / h for pi, h in zip(p, hs)], ONE_SIDED),
                (d.left, d.left_error, [(f0 - mi) / h for mi, h in zip(m, hs)], ONE_SIDED),
                (d.central, d.central_error, [(pi - mi) / (2 * h) for pi, mi, h in zip(p, m, hs)], CENTRAL),
            ):
                v, e = extrapolate(quotients, power, rows=True)
                values.append(v)
                errors.append(e)
            with np.errstate(invalid="ignore"):
                unknown = ~np.isfinite(np.stack(p + m)).all(axis=0)
            noise = 16 * _EPS * peaks.reshape((-1,) + (1,) * (p[0].ndim - 1)) / hs[-1]
            d.noise.append(np.where(unknown, np.inf, np.broadcast_to(noise, p[0].shape)))
        if exact and self.complex_ok:
            rows = [self.complex_right(direction) for direction in directions]
            d.exact = [np.stack([r[o] if pick is None else np.ravel(r[o])[pick[o]] for r in rows])
                       for o in range(len(self.outputs))]
        return d

    @property
    def constant_scales(self) -> list:
        """Per input, its scale where every element has the same one (an input without
        bounds), else None; found once."""
        if getattr(self, "_constant_scales", None) is None or self._constant_scales[0] is not self.scales:
            constant = [None if s is None or not s.size or float(np.min(s)) != float(np.max(s)) else float(s.flat[0])
                        for s in self.scales]
            self._constant_scales = (self.scales, constant)
        return self._constant_scales[1]

def _shifted(x, w, t):
    """``x + t w`` in one fresh array (``t w`` first, then ``x`` added in place: the same
    rounding, one pass and temporary less over a million elements)."""
    m = np.multiply(w, t)
    if np.ndim(m):
        m += x
        return m
    return x + m


def _float64(y) -> np.ndarray:
    return np.asarray(y, np.float64)


def _fingerprint(arrays):
    """The wrapping integer sum of each array's bits (None for a copy of the
    differentiator's own): any write that changes an element changes it, but for
    changes that cancel exactly modulo 2^64. A float sum would miss changes below its
    last bit (an output of 1e8 everywhere, moved by 1e-7)."""
    if arrays is None:
        return None
    return tuple(int(np.add.reduce(a.reshape(-1).view(np.uint64))) if a.dtype == np.float64 and a.flags.c_contiguous
                 else a.tobytes() for a in arrays)


def _own(y) -> np.ndarray:
    """``y`` in float64 as an array of the differentiator's own (a conversion is a fresh
    array already; the forward's own float64 array is copied)."""
    a = np.asarray(y, np.float64)
    return a.copy() if a is y or np.may_share_memory(a, y) else a


def _quotient(moved, here, h):
    """``(moved - here) / h``, in one temporary."""
    q = np.subtract(moved, here)
    if np.ndim(q):
        q /= h
        return q
    return q / h
