"""A micrograd-style reference point: a graph of scalar objects, one per number.

Every multiply and add of the network becomes a ``Value`` holding its data, its
gradient and a closure that pushes the gradient to its inputs. It is the slowest
honest way to backpropagate in Python, and the benchmarks keep it only to show how
far the list-based ``pure-python`` implementation is from it. It is not registered:
``backprop-harness check`` never sees it, the asv suite adds it by name.
"""

from __future__ import annotations

import math

from harness.core.protocol import Capabilities, Implementation, Prepared


class Value:
    """One scalar in the graph: ``data``, ``grad``, and how to pass ``grad`` back."""

    __slots__ = ("data", "grad", "_backward", "_inputs")

    def __init__(self, data, inputs=()):
        self.data = data
        self.grad = 0.0
        self._backward = None
        self._inputs = inputs

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))

        def _backward():  # d(a + b) = da + db
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))

        def _backward():  # d(a b) = b da + a db
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0.0 else 0.0, (self,))

        def _backward():  # relu'(z) = [z > 0]
            if out.data > 0.0:
                self.grad += out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,))

        def _backward():  # d exp(a) = exp(a) da
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,))

        def _backward():  # d log(a) = da / a
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other if isinstance(other, Value) else -other)

    __radd__ = __add__
    __rmul__ = __mul__

    def backward(self):
        # Topological order without recursion: the graph is far deeper than the stack.
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in node._inputs)
        self.grad = 1.0
        for node in reversed(order):
            if node._backward is not None:
                node._backward()


def neuron_sum(weights, inputs, bias):
    # z = sum_k w_k x_k + b, one Value per product and per partial sum
    total = bias
    for w, v in zip(weights, inputs):
        total = total + w * v
    return total


class ScalarAutogradImplementation(Implementation):
    name = "scalar-autograd"
    description = "micrograd-style graph of scalar Value objects (benchmark reference only)"
    # ~30 k forward multiply-adds a second: beyond 50 k a step outlasts asv's patience.
    capabilities = Capabilities(activations={"relu", "identity"}, losses={"cross_entropy"}, dtypes={"float64"},
                                max_multiply_adds=50_000)

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        return ScalarAutogradPrepared(spec, params)


class ScalarAutogradPrepared(Prepared):
    def __init__(self, spec, params):
        self.spec = spec
        self.params = [([[Value(w) for w in row] for row in W.tolist()], [Value(v) for v in b.tolist()]) for W, b in params]

    def batch(self, x, y):
        return x.tolist(), y.tolist()

    def step(self, batch):
        x, y = batch
        for W, b in self.params:  # zero_grad
            for v in (*b, *(w for row in W for w in row)):
                v.grad = 0.0
        total = Value(0.0)
        for row, label in zip(x, y):
            a = row
            for (W, b), name in zip(self.params, self.spec.activations):
                a = [neuron_sum(w_row, a, bj) for w_row, bj in zip(W, b)]
                if name == "relu":
                    a = [z.relu() for z in a]
            # -log softmax(a)[label] = log sum_j exp(a_j - m) + m - a_label, m = max (a constant)
            m = max(z.data for z in a)
            log_total = sum((z - m).exp() for z in a).log()
            total = total + (log_total + m - a[label])
        loss = total * (1.0 / len(x))
        loss.backward()
        grads = [([[w.grad for w in w_row] for w_row in W], [v.grad for v in b]) for W, b in self.params]
        return loss.data, grads
