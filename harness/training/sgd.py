"""The update every implementation's training shares: SGD with optional momentum."""

from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent with optional (heavy-ball) momentum, in place on
    NumPy arrays, in their own dtype."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [(np.zeros_like(W), np.zeros_like(b)) for W, b in params] if momentum else None

    def step(self, grads) -> None:
        lr = self.params[0][0].dtype.type(self.lr)
        for i, ((W, b), (dW, db)) in enumerate(zip(self.params, grads)):
            if self.velocity is not None:
                vW, vb = self.velocity[i]
                vW *= self.momentum
                vW += dW
                vb *= self.momentum
                vb += db
                dW, db = vW, vb
            W -= lr * dW
            b -= lr * db
