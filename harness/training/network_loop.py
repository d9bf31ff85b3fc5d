"""Training any network given as a step function, ``step(params, x, y) -> (loss,
gradients)`` on NumPy arrays, side by side with a reference, under the MLP's rules
(``harness.training.loop``): the harness owns the parameters (one tuple of arrays per
layer) and the SGD update, every trainee starts from the same parameters and sees the
same batches, and its distance from the reference's trajectory after every epoch is
judged against ``trajectory_tolerance``, for as many epochs as the rounding twin (the
reference on each batch's rows reversed) stays within TWIN_GATE of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.core.containment import described, restoring_global_state, user_interrupted, watching_interrupts
from harness.training.loop import TrainConfig, TrainingRun, epoch_order, judged_by_twin
from harness.training.sgd import SGD


@dataclass(frozen=True)
class Trainee:
    """One implementation to train: ``step(params, x, y) -> (loss, gradients)``, the
    gradients shaped like ``params``."""

    name: str
    step: Callable


def batch_reversed(trainee: Trainee) -> Trainee:
    """The rounding twin: the same step on each batch's rows in reverse order."""
    return Trainee(f"{trainee.name} (batch reversed)", lambda params, x, y: trainee.step(params, x[::-1], y[::-1]))


@dataclass(frozen=True)
class NetworkTraining:
    """How to train: ``initial`` parameters (float64; cast to ``dtype``), ``accuracy(params,
    x, labels)`` computed the same way for every trainee, and SGD's numbers (checked as
    ``TrainConfig`` checks them)."""

    initial: list
    accuracy: Callable
    lr: float
    momentum: float
    epochs: int
    batch_size: int
    seed: int = 0
    dtype: str = "float64"

    def __post_init__(self):
        TrainConfig(None, self.lr, self.momentum, self.epochs, self.batch_size, self.seed, self.dtype)

    def steps_per_epoch(self, n_samples: int) -> int:
        return n_samples // self.batch_size


def train_step_function(trainee: Trainee, dataset, setup: NetworkTraining, *, reference: TrainingRun | None = None,
                        on_step=None) -> TrainingRun:
    """Train ``trainee``; with ``reference`` (the reference's run, which keeps its
    parameters after every epoch) measure the divergence from it after every epoch.
    Whatever the trainee raises -- anything but the user's Ctrl-C -- ends its run and
    is recorded in ``run.error``."""
    dtype = setup.dtype
    run = TrainingRun(trainee.name, dtype, is_reference=reference is None)
    params = [tuple(p.astype(dtype) for p in group) for group in setup.initial]
    optimizer = SGD(params, setup.lr, setup.momentum)
    x_train = dataset.x_train.astype(dtype)
    try:
        for epoch in range(setup.epochs):
            batches = epoch_order(len(x_train), setup.batch_size, epoch, setup.seed)
            step_time = 0.0
            started = time.perf_counter()
            for i, index in enumerate(batches):
                with restoring_global_state():  # the trainee's calls; what they change is put back
                    t0 = time.perf_counter()
                    loss, grads = trainee.step([tuple(p.copy() for p in group) for group in params],
                                               x_train[index], dataset.y_train[index])
                    step_time += time.perf_counter() - t0
                run.add_step(float(loss), epoch, i)
                optimizer.step([tuple(np.asarray(g, dtype) for g in group) for group in grads])
                if on_step is not None:
                    on_step(run, epoch, i + 1, len(batches))
            run.end_epoch(epoch, params, reference, seconds=time.perf_counter() - started, step_seconds=step_time,
                          n_batches=len(batches), accuracy=setup.accuracy(params, dataset.x_test.astype(dtype), dataset.y_test))
    except BaseException as exc:  # a broken trainee -- even one that exits -- must not stop the others
        if user_interrupted(exc):
            raise
        run.error = described(exc)
    return run


def train_side_by_side(trainees: list[Trainee], dataset, setup: NetworkTraining, *, on_step=None,
                       on_start=None) -> list[TrainingRun]:
    """``trainees[0]`` is the reference: it, its rounding twin, then every other trainee,
    each compared with the reference after every epoch."""
    reference = trainees[0]
    runs = []
    with watching_interrupts():
        for trainee in [reference, batch_reversed(reference), *trainees[1:]]:
            if on_start is not None:
                on_start(trainee.name)
            runs.append(train_step_function(trainee, dataset, setup, reference=runs[0] if runs else None,
                                            on_step=on_step))
    return judged_by_twin(runs)
