"""Float64 inner products, extremes and random draws over large arrays, each in as few
passes as NumPy allows (the mapping checks make many of them over 10^6 elements)."""

from __future__ import annotations

import math

import numpy as np

COMPLEX_H = 1e-40  # the complex step: truncation O(h^2) is nothing; derivatives above 1e-268 stay normal
# What the complex step resolves: below it, Im f(x + i h w) = h f' w is subnormal (its
# relative precision gone) or flushed to 0, so a derivative of 5e-305 (a saturated
# softmax's smallest probability, times its cotangent) came out 0 and a right VJP failed
COMPLEX_FLOOR = float(np.finfo(np.float64).smallest_normal) / COMPLEX_H


def inner(a, b) -> float:
    """``sum(a * b)`` over all elements in float64, in one pass: BLAS's dot (6 times
    einsum's speed at 10^6 elements; the checks hold BLAS to one thread, see
    mapping_runner, so no pool contends on a shared machine)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.float64:
        a = a.astype(np.float64)
    if b.dtype != np.float64:
        b = b.astype(np.float64)
    return float(np.dot(a.reshape(-1), b.reshape(-1)))


def largest(a) -> float:
    """The largest finite magnitude in ``a`` (0 if none)."""
    a = np.asarray(a)
    if not a.size:
        return 0.0
    # max|a| from the two extremes: two reductions, no temporary |a| (half the time at 10^6;
    # a NaN or an infinity makes it non-finite as before)
    peak = abs(max(float(np.max(a)), -float(np.min(a)))) if a.dtype.kind in "fiu" else float(np.max(np.abs(a)))
    if np.isfinite(peak):
        return peak
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size else 0.0


def random_signs(rng, shape) -> np.ndarray:
    """Rademacher signs as booleans (True: -1), one random bit each."""
    n = int(np.prod(shape))
    return np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), np.uint8), count=n).view(bool).reshape(shape)


def signed(rng, scale, constant: float | None = None) -> np.ndarray:
    """``scale`` with Rademacher signs (the bits of ``random_signs``), as float64: through
    uint8 arithmetic, 4 times faster than a boolean np.where at 10^6 elements. With
    ``constant`` (every element of ``scale`` equal to it): the same values, ``b (-2 c) + c``,
    in a pass less."""
    bits = np.unpackbits(np.frombuffer(rng.bytes((scale.size + 7) // 8), np.uint8), count=scale.size)
    w = bits.astype(np.float64).reshape(scale.shape)
    if constant is not None and math.isfinite(2.0 * constant):
        w *= -2.0 * constant
        w += constant
        return w
    w *= -2.0
    w += 1.0
    w *= scale
    return w


def uniform_unit(rng, shape, dtype="float64") -> np.ndarray:
    """Uniform on [-sqrt 3, sqrt 3): mean 0 and variance 1 like a standard normal, with a
    density bounded by 1 / (2 sqrt 3), which is all a miss bound needs of a cotangent
    (a weighted sum of them is as unlikely to be small as of Gaussians, within a factor
    of the same order); 2 to 5 times cheaper to draw at 10^6 elements."""
    x = rng.random(shape, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    x *= 2 * math.sqrt(3.0)
    x -= math.sqrt(3.0)
    return x


def complex_point(x, w, shift: float, out=None) -> np.ndarray:
    """``x + shift w + i h w`` as complex128, filling the real and imaginary parts in
    place (half the passes of complex arithmetic over a million elements); into ``out``
    where given (complex128, shaped like ``x``)."""
    z = np.empty(x.shape, np.complex128) if out is None else out
    if shift:
        np.multiply(w, shift, out=z.real)
        z.real += x
    else:
        z.real[...] = x
    np.multiply(w, COMPLEX_H, out=z.imag)
    return z


def spread_of(x) -> float:
    """The standard deviation of ``x``, from two BLAS passes (sum and sum of squares)
    where no cancellation can spoil it (a spread well above 1e-4 of the mean), else by
    np.std."""
    if not x.size:
        return 0.0
    flat = x.reshape(-1)
    mean = float(flat.sum()) / flat.size
    variance = float(np.dot(flat, flat)) / flat.size - mean * mean
    if np.isfinite(variance) and variance > 1e-8 * mean * mean:
        return math.sqrt(variance)
    return float(np.std(x))
