"""Plain-language guesses at what went wrong in a mapping's backward, from the pattern
of its errors: all zero, a constant factor, a transpose, a kernel flipped along its
spatial axes, an error shared along a row (a missing term), float32-sized errors,
one input or one element wrong."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from harness.core.hints import ratio_hint


def _close(a, b) -> bool:
    scale = float(np.max(np.abs(b), initial=0.0))
    return a.shape == b.shape and scale > 0 and bool(np.allclose(a, b, rtol=1e-4, atol=1e-6 * scale))


def flipped_axes(got, expected) -> tuple | None:
    """The axes along which ``got`` equals ``expected`` reversed (the last three axes,
    any combination of them), or ``None``."""
    if got.ndim == 0 or np.allclose(got, expected, rtol=1e-4, atol=1e-6 * float(np.max(np.abs(expected), initial=0.0))):
        return None
    axes = [a for a in range(max(0, got.ndim - 3), got.ndim) if got.shape[a] > 1]
    for n in range(1, len(axes) + 1):
        for chosen in combinations(axes, n):
            if _close(np.flip(got, chosen), expected):
                return chosen
    return None


def row_shared(error) -> bool:
    """The error is the same for every element along the last axis (and not zero)."""
    if error.ndim == 0 or error.shape[-1] < 2:
        return False
    spread = np.abs(error - error.mean(axis=-1, keepdims=True))
    return float(np.max(np.abs(error))) > 0 and float(np.max(spread)) <= 1e-3 * float(np.max(np.abs(error)))


def tensor_hints(name: str, got, expected, failed_mask=None, subject: str = "the gradient of {}") -> list[str]:
    """What the failing tensor ``name`` looks like against the expected one
    (``subject`` words it: "the gradient of {}", "{}" for an output)."""
    what = subject.format(name)
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return []
    notes = []
    if not np.any(got):
        return [f"{what} is all zero: never computed, or overwritten?"]
    big = np.abs(expected) > 0.1 * float(np.max(np.abs(expected), initial=0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        text = ratio_hint(got[big] / expected[big], got.shape[0] if got.ndim else 1)
    if text:
        return [f"{what}: {text}"]
    if got.ndim == 2 and got.shape[0] == got.shape[1] > 1 and _close(got, expected.T):
        notes.append(f"{what} equals the transpose of the expected one")
    axes = flipped_axes(got, expected)
    if axes and not notes:
        notes.append(f"{what} equals the expected one reversed along axis {', '.join(map(str, axes))}: "
                     "a convolution's kernel not flipped (or flipped twice) in the backward?")
    error = got - expected
    if not notes and row_shared(error):
        notes.append(f"the error in {what} is the same for every element along the last axis: a missing (or extra) "
                     "term summed over that axis, as softmax's -s_i sum_j g_j s_j or layer_norm's mean terms?")
    if not notes and failed_mask is not None and np.count_nonzero(failed_mask) == 1:
        index = tuple(int(i) for i in np.argwhere(failed_mask)[0])
        notes.append(f"a single element of {what} is wrong, at [{', '.join(map(str, index))}]")
    if not notes:
        rel = float(np.max(np.abs(error))) / max(float(np.max(np.abs(expected))), 1e-300)
        if rel > 0.05:
            notes.append(f"the error in {what} is as large as the value itself and no constant factor: "
                         "a missing or extra term, or the gradient routed to the wrong elements?")
    return notes


def vjp_hint(reports, got, expected, *, float32_sized: bool = False, subject: str = "the gradient of {}") -> str:
    """One line for a failed elementwise comparison over several named tensors."""
    failing = [i for i, t in enumerate(reports) if t.verdict.value == "FAIL"]
    if not failing:
        return ""
    notes = []
    for i in failing:
        mask = None
        if reports[i].n_failed == 1 and reports[i].worst:
            mask = np.zeros(np.shape(got[i]), bool)
            mask[reports[i].worst[0].index] = True
        notes += tensor_hints(reports[i].name, got[i], expected[i], mask, subject)
    if float32_sized:
        notes.append("the errors are the size of float32 rounding: computed in float32 somewhere?")
    if len(reports) > 1 and len(failing) == 1:
        notes.append(f"only {subject.format(reports[failing[0]].name)} is wrong")
    return "; ".join(dict.fromkeys(notes))
