"""Dense layers: linear (y = x W^T + b, any leading axes), batched matmul with a
broadcast weight, embedding lookup (their bugs are in tests/operator_corpus/dense.py).

Samples use non-square, non-symmetric weights (a transposed gradient then has the wrong
shape) and also square ones (then it has the right shape and wrong values), rank-3
inputs, a single sample, width 1, and repeated embedding indices.
"""

from __future__ import annotations

import numpy as np

from harness.ops.numpy_operator import In, Operator, add_reduce, normal, single


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the gradient of broadcasting an operand to g's shape."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1), keepdims=True)


class Linear(Operator, correct=True):
    """linear: y = x W^T + b, x of shape (..., in), W (out, in), b (out,)."""

    name = "linear"
    inputs = (In((4, 3)), In((5, 3)), In((5,)))

    skips_input_grad = True  # a chain's first layer need not differentiate the batch
    # the forward's output and the VJP's input gradient are new arrays aliasing nothing
    # given or returned: a chain's step may let the next node write over them (StepPlan)
    fresh = True

    def forward(self, x, W, b):
        z = x @ W.T  # W (out, in) C-contiguous: W.T is a view BLAS reads transposed
        z += b  # in place: no second (batch, out) temporary
        return z

    def vjp(self, inputs, cotangents, input_grad=True, out=None):
        """``input_grad=False``: ``None`` for x (the MLP's first layer: a third of the work);
        ``out=(dW, db)``: arrays (C-contiguous, W's and b's shape and dtype) to write into."""
        x, W, _ = inputs
        g = cotangents[0] if type(cotangents) is tuple and len(cotangents) == 1 else single(cotangents)
        # rows of a batch as they are (an MLP's), else leading axes folded into rows (g has
        # the output's shape: x's leading axes)
        g2, x2 = (g, x) if x.ndim == 2 else (g.reshape(-1, W.shape[0]), x.reshape(-1, W.shape[1]))
        # np.dot, not @: for a batch of one, matmul computes this (out, 1) x (1, in)
        # outer product outside BLAS, ~7x slower than the whole rest of an MLP step.
        if out is None:  # add_reduce(g2, 0): g2.sum(axis=0)
            return g @ W if input_grad else None, np.dot(g2.T, x2), add_reduce(g2, 0)
        return g @ W if input_grad else None, np.dot(g2.T, x2, out=out[0]), add_reduce(g2, 0, out=out[1])

    def jvp(self, inputs, tangents):
        x, W, _ = inputs
        dx, dW, db = tangents
        return (dx @ W.T + x @ dW.T + db,)

    def samples(self, rng, dtype):
        def case(x_shape, out, label, scale=1.0):
            n_in = x_shape[-1]
            return ((normal(rng, x_shape, dtype, scale), normal(rng, (out, n_in), dtype), normal(rng, (out,), dtype)),
                    {}, label)

        return [
            case((4, 3), 5, "non-square W (5, 3)"),
            case((4, 3), 3, "square, non-symmetric W"),
            case((2, 3, 4), 5, "rank-3 input (2, 3, 4)"),
            case((1, 3), 2, "a single sample"),
            case((3, 1), 1, "width 1 in and out"),
            case((4, 3), 2, "large magnitudes (x ~ 1e3)", scale=1e3),
        ]


class Matmul(Operator, correct=True):
    """batched matmul a @ b with b broadcast over the batch: (B, n, k) @ (k, m)."""

    name = "matmul"
    inputs = (In((3, 4, 2)), In((2, 5)))

    def forward(self, a, b):
        return a @ b

    def vjp(self, inputs, cotangents):
        a, b = inputs
        g = single(cotangents)
        return unbroadcast(g @ np.swapaxes(b, -1, -2), a.shape), unbroadcast(np.swapaxes(a, -1, -2) @ g, b.shape)

    def jvp(self, inputs, tangents):
        a, b = inputs
        da, db = tangents
        return (da @ b + a @ db,)

    def samples(self, rng, dtype):
        return [
            ((normal(rng, (3, 4, 2), dtype), normal(rng, (2, 5), dtype)), {}, "(3, 4, 2) @ (2, 5)"),
            ((normal(rng, (2, 3, 3), dtype), normal(rng, (3, 3), dtype)), {}, "square (2, 3, 3) @ (3, 3)"),
            ((normal(rng, (1, 1, 4), dtype), normal(rng, (4, 1), dtype)), {}, "batch 1, width 1"),
        ]


class Embedding(Operator, correct=True):
    """embedding: rows of W picked by integer indices; the gradient scatter-adds (np.add.at)."""

    name = "embedding"
    inputs = (In((3, 4), kind="int", low=0, high=3), In((6, 2)))  # high 3 << 12 lookups: repeats

    def forward(self, indices, W):
        return W[indices]

    def vjp(self, inputs, cotangents):
        indices, W = inputs
        dW = np.zeros_like(W)
        self.scatter(dW, indices, single(cotangents))
        return None, dW

    def scatter(self, dW, indices, g):
        """Add each looked-up row's gradient into its row of dW; a repeated index adds again."""
        np.add.at(dW, indices, g)

    def jvp(self, inputs, tangents):
        indices, _ = inputs
        _, dW = tangents
        return (dW[indices],)

    def samples(self, rng, dtype):
        def case(indices, vocab, dim, label):
            return (np.asarray(indices, dtype=np.int64), normal(rng, (vocab, dim), dtype)), {}, label

        return [
            case(rng.integers(0, 3, size=(3, 4)), 6, 2, "12 lookups among 3 rows: repeats"),
            case([[1, 1, 1, 1]], 4, 3, "one row looked up four times"),
            case([[0, 2], [4, 3]], 5, 2, "distinct indices"),
            case([[2]], 3, 1, "a single lookup, width 1"),
        ]
