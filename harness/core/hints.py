"""Plain-language guesses at what went wrong, from the pattern of a failure."""

from __future__ import annotations

import numpy as np


def ratio_hint(ratios: np.ndarray, batch: int, width: int | None = None) -> str:
    """Name a constant ratio got/expected: sign flip, the batch size, a small integer."""
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return ""
    k = float(np.median(ratios))
    if k == 0 or np.max(np.abs(ratios - k)) > 1e-3 * abs(k):
        return ""
    if abs(k + 1) < 1e-3:
        return "every value has its sign flipped (ratio -1): gradient ascent, or (target - output) instead of (output - target)?"
    named = {batch: f"{batch} — the batch size? (a sum where a mean belongs)", 1 / batch: f"1/{batch} — the batch size? (divided by N twice)"}
    if width and width not in named:
        named[width] = f"{width} — the output width? (a mean over the batch only, where MSE averages every element)"
    for value, text in ((2.0, "a factor 2 from the square's derivative counted twice?"), (0.5, "the 2 of d(x^2)/dx forgotten?")):
        named[value] = f"{named[value]}, or {text}" if value in named else f"{'2' if value == 2 else '1/2'} — {text}"
    for value, text in named.items():
        if value != 1 and abs(k / value - 1) < 1e-3:
            return f"off by a constant factor {text}"
    if abs(k - 1) < 1e-3:
        return ""
    return f"off by a constant factor {k:.6g}"


def gradient_hint(reports, got, expected, batch: int, width: int | None = None, float32_sized: bool = False) -> str:
    failing = [i for i, t in enumerate(reports) if t.verdict.value == "FAIL"]
    if not failing:
        return ""
    notes = []
    if all(not np.any(np.asarray(got[i])) for i in failing):
        notes.append("the wrong gradients are all zero: never computed, or overwritten?")
    else:
        ratios = []
        for i in failing:
            g, e = np.asarray(got[i], np.float64).ravel(), np.asarray(expected[i], np.float64).ravel()
            big = np.abs(e) > 0.1 * np.max(np.abs(e), initial=0.0)
            ratios.append(g[big] / e[big])
        text = ratio_hint(np.concatenate(ratios), batch, width) if ratios else ""
        if text:
            notes.append(text)
    if float32_sized:
        notes.append("the errors are the size of float32 rounding: computed in float32 somewhere?")
    for i in failing:
        g, e = np.asarray(got[i], np.float64), np.asarray(expected[i], np.float64)
        if g.ndim == 2 and g.shape[0] == g.shape[1] and g.shape[0] > 1 and np.allclose(g, e.T, rtol=1e-4, atol=1e-6 * np.max(np.abs(e))):
            notes.append(f"{reports[i].name} equals the transpose of the expected gradient")
    if len(failing) == 1 and reports[failing[0]].n_failed == 1:
        notes.append(f"a single element is wrong, in {reports[failing[0]].name}")
    elif len(failing) == 1:
        notes.append(f"only {reports[failing[0]].name} is wrong")
    else:
        layers = {reports[i].name.split()[1] for i in failing}
        kinds = {reports[i].name.split()[2] for i in failing}
        if len(layers) == 1:
            notes.append(f"the error is confined to layer {layers.pop()}")
        elif kinds == {"b"}:
            notes.append("only the bias gradients are wrong")
        elif kinds == {"W"}:
            notes.append("only the weight gradients are wrong")
        layer_of = [int(reports[i].name.split()[1]) for i in failing]
        if layers and len(layers) > 1 and min(layer_of) == 0 and max(layer_of) < len(reports) // 2 - 1:
            notes.append("the last layer is right, earlier ones wrong: the error enters while propagating backwards")
    return "; ".join(notes)


def nonfinite_hint(case) -> str:
    out = case.x.dtype
    if case.spec.loss == "cross_entropy":
        return f"softmax of large logits overflows in {out}: subtract the row max before exp (log-sum-exp)"
    return "an overflow or a division by zero in the forward or backward pass"


def property_hint(name: str, reports) -> str:
    if name == "batch_gradient_is_mean_of_samples":
        return "the batch reduction is not a mean (a sum, or a mean over the wrong axis?), or samples interact"
    if name == "batch_permutation_invariant":
        return "the result depends on the order of the batch: samples paired with the wrong labels?"
    if name == "batch_duplication_invariant":
        return "the result changes when the batch is repeated: a sum where a mean belongs, or a fixed batch size?"
    return ""
