"""Losses: mean squared error and cross entropy (integer labels, ignore_index, label
smoothing, mean over the rows that count, as torch.nn.functional.cross_entropy) (bugs in
tests/operator_corpus/losses.py). Both return a 0-d array; the cotangent is a scalar that
is not 1 in the engine's cases, so a backward that assumes 1 is visible.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import In, Operator, add_reduce, maximum_reduce, normal, single


class Mse(Operator, correct=True):
    """mse: mean((y - t)^2) over every element; both y and t get a gradient."""

    name = "mse"
    inputs = (In((4, 3)), In((4, 3)))
    fresh = True  # the VJP's gradient of y is a new array (harness.ops.chain.StepPlan)

    def forward(self, y, t):
        return np.asarray(np.mean((y - t) ** 2))

    def vjp(self, inputs, cotangents):
        y, t = inputs
        d = 2 * (y - t) / y.size * single(cotangents)
        return d, -d

    def jvp(self, inputs, tangents):
        y, t = inputs
        dy, dt = tangents
        return (np.asarray(2 * np.mean((y - t) * (dy - dt))),)

    def samples(self, rng, dtype):
        def case(shape, label, scale=1.0):
            return (normal(rng, shape, dtype, scale), normal(rng, shape, dtype, scale)), {}, label

        return [case((4, 3), "4x3"), case((1, 1), "a single element"), case((2, 3, 2), "rank 3"),
                case((5, 2), "large magnitudes (1e3)", scale=1e3)]


def log_softmax_rows(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def check_labels(labels, n_classes: int, ignore_index: int) -> None:
    """Refuse labels that are no class (NumPy would index with them: a negative one from
    the end, a wrong loss and no error): ``ValueError`` naming the first bad one."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: labels are {labels.dtype}; expected integer class indices "
                         f"0..{n_classes - 1} (or ignore_index={ignore_index})")
    bad = ((labels < 0) | (labels >= n_classes)) & (labels != ignore_index)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"cross_entropy: label {labels[row]} at row {row}; expected a class index "
                         f"0..{n_classes - 1} (or ignore_index={ignore_index}) for {n_classes} classes")


class CrossEntropy(Operator, correct=True):
    """cross entropy of logits (N, C) and integer labels (N,), ignore_index rows left out of
    both the loss and the mean, label smoothing eps/C as torch."""

    name = "cross_entropy"
    inputs = (In((4, 5)), In((4,), kind="int", low=0, high=5))
    fresh = True  # the VJP's gradient of the logits is a new array (harness.ops.chain.StepPlan)
    params = {"ignore_index": -100, "label_smoothing": 0.0}

    def parts(self, logits, labels, ignore_index, label_smoothing):
        """log-probabilities, the rows that count, and the smoothed one-hot targets."""
        check_labels(labels, logits.shape[-1], ignore_index)
        logp = log_softmax_rows(logits)
        valid = (labels != ignore_index).astype(logits.dtype)
        onehot = np.zeros_like(logits)
        onehot[np.arange(len(labels)), np.where(labels != ignore_index, labels, 0)] = 1
        target = (1 - label_smoothing) * onehot + label_smoothing / logits.shape[-1]
        return logp, valid, target

    @staticmethod
    def plain(logits, labels, ignore_index, label_smoothing, *, loss=True, cotangent=None):
        """When every row counts and nothing is smoothed (an MLP's step) the target is the
        one-hot label itself, picked by index instead of multiplied in: then ``(loss, d)``,
        the mean of logsumexp minus the label's logit (a NumPy scalar; None unless
        ``loss``) and ``cotangent * (softmax - onehot) / N`` (None unless a ``cotangent``
        is given), from one softmax; else None.

        An ``ignore_index`` that is no index of a class (outside [-C, C): torch's -100 with
        C <= 100) needs no scan of the labels: NumPy's index raises IndexError on a row
        carrying it, and the general path takes the batch. So does a label that is no class
        (negative, too large, not an integer): the labels are placed in the flat logits by
        ``np.ravel_multi_index``, which refuses such an index where plain indexing would
        count a negative one from the end, and the general path refuses it
        (``check_labels``)."""
        if label_smoothing:
            return None
        n_classes = logits.shape[-1]
        if -n_classes <= ignore_index < n_classes and (labels == ignore_index).any():
            return None
        n = len(labels)
        try:  # each row's label as a flat index (one call; a label that is no class raises)
            at = np.ravel_multi_index((np.arange(n), labels), logits.shape)
        except (ValueError, TypeError):
            return None
        shifted = logits - maximum_reduce(logits, -1, keepdims=True)  # .max(axis=-1, keepdims=True)
        picked = shifted.reshape(-1)[at]
        d = np.exp(shifted)
        total = add_reduce(d, -1, keepdims=True)
        value = add_reduce(np.log(total[:, 0]) - picked) / n if loss else None
        if cotangent is None:
            return value, None
        d /= total
        d.reshape(-1)[at] -= 1  # (d is new and contiguous: the reshape is a view)
        d *= cotangent / n
        return value, d

    def forward(self, logits, labels, ignore_index=-100, label_smoothing=0.0):
        plain = self.plain(logits, labels, ignore_index, label_smoothing)
        if plain is not None:
            return np.asarray(plain[0])
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        return np.asarray(-(target * logp).sum(axis=-1) @ valid / valid.sum())

    def vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        plain = self.plain(logits, labels, ignore_index, label_smoothing, loss=False, cotangent=single(cotangents))
        if plain is not None:
            return plain[1], None
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        d = (np.exp(logp) - target) * valid[:, None] / valid.sum() * single(cotangents)
        return d, None

    def forward_vjp(self, inputs, cotangents, ignore_index=-100, label_smoothing=0.0):
        """``(loss, vjp)`` in one call, for a chain whose loss cotangent is known before the
        forward (an MLP's step): in the plain case the softmax is computed once for both,
        and the loss is the NumPy scalar the sum gives (no 0-d array made of it)."""
        logits, labels = inputs
        cotangent = cotangents[0] if type(cotangents) is tuple and len(cotangents) == 1 else single(cotangents)
        plain = self.plain(logits, labels, ignore_index, label_smoothing, cotangent=cotangent)
        if plain is not None:
            return plain[0], (plain[1], None)
        return (self.forward(logits, labels, ignore_index, label_smoothing),
                self.vjp(inputs, cotangents, ignore_index, label_smoothing))

    def jvp(self, inputs, tangents, ignore_index=-100, label_smoothing=0.0):
        logits, labels = inputs
        dlogits, _ = tangents
        logp, valid, target = self.parts(logits, labels, ignore_index, label_smoothing)
        return (np.asarray(((np.exp(logp) - target) * dlogits).sum(axis=-1) @ valid / valid.sum()),)

    def samples(self, rng, dtype):
        def case(labels, n_classes, label, scale=1.0, **params):
            labels = np.asarray(labels, dtype=np.int64)
            params = {"ignore_index": -100, "label_smoothing": 0.0, **params}
            return (normal(rng, (len(labels), n_classes), dtype, scale), labels), params, label

        return [
            case(rng.integers(0, 5, size=4), 5, "4 rows, 5 classes"),
            case([2, -100, 0, -100, 4], 5, "two ignore_index rows"),
            case([1, -100, 3, 0], 4, "label smoothing 0.1 with an ignored row", label_smoothing=0.1),
            case([0, 3, 3], 4, "ignore_index = 3 (a real class id)", ignore_index=3),
            case([2], 3, "a single row"),
            case([1, 0, 2], 3, "large logits (scale 100)", scale=100.0),
        ]

