"""Training with any implementation: the loop, SGD, and trajectory agreement.

The harness owns the parameters (NumPy arrays in the requested dtype) and the SGD
update; an implementation only computes the loss and gradients of each batch, and
receives the updated parameters through ``Prepared.set_params``. The update is thus
the same code for everyone, so two implementations that start from the same
parameters and see the same batches can differ only through their gradients: the
distance between their trajectories measures their gradients over a whole training
run, which finite differences at one point cannot.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from harness.core.containment import (
    described,
    restoring_global_state,
    user_interrupted,
    watching_interrupts,
)
from harness.core.out_of_process import ImplementationGone, RemoteError
from harness.core.protocol import prepare
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyImplementation
from harness.training.sgd import SGD
from harness.training.trajectory import TWIN_GATE, BatchReversed, relative_divergence, trajectory_tolerance


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``momentum`` 0 is plain SGD; the update follows ``torch.optim.SGD``:
    ``v = momentum * v + g``, ``p -= lr * v``. The last incomplete batch of each
    epoch is dropped, so every step sees ``batch_size`` samples and every batch has
    one shape (``torch.compile`` compiles once)."""

    spec: NetworkSpec
    # Defaults that reach >= 95% test accuracy on digits (64-500-10) in about a second
    # of numpy: seeds 0-4 gave 96.9-98.3%. The seed's lr 0.01 plain SGD (momentum 0)
    # is slower: 91-93% after 20 epochs.
    lr: float = 0.1
    momentum: float = 0.9
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    dtype: str = "float64"
    device: str | None = None

    def __post_init__(self):
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate {self.lr!r}: expected a finite number > 0")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum {self.momentum!r}: expected a number in [0, 1)")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} {value!r}: expected an integer >= 1")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype {self.dtype!r}: expected float32 or float64")

    def steps_per_epoch(self, n_samples: int) -> int:
        return n_samples // self.batch_size


# --- parameters, batches and the update ---------------------------------------------


def initial_parameters(spec: NetworkSpec, seed: int, dtype: str = "float64") -> list[tuple[np.ndarray, np.ndarray]]:
    """``torch.nn.Linear``'s default initialisation, as the seed's example gets it:
    ``W`` and ``b`` uniform in ``(-1/sqrt(fan_in), 1/sqrt(fan_in))``, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    params = []
    for (w_shape, b_shape) in spec.shapes():
        bound = 1.0 / math.sqrt(w_shape[1])
        W = rng.uniform(-bound, bound, w_shape).astype(dtype)
        b = rng.uniform(-bound, bound, b_shape).astype(dtype)
        params.append((W, b))
    return params


def epoch_order(n_samples: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """The index arrays of one epoch's batches: a permutation drawn from
    ``(seed, epoch)``, cut into full batches (the remainder is dropped)."""
    if batch_size > n_samples:
        raise ValueError(f"batch size {batch_size}: larger than the {n_samples} training samples")
    order = np.random.default_rng([seed, epoch]).permutation(n_samples)
    steps = n_samples // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def targets(spec: NetworkSpec, labels: np.ndarray, dtype: str) -> np.ndarray:
    """What the loss compares against: labels for cross-entropy, one-hot rows for MSE."""
    if spec.loss == "cross_entropy":
        return labels
    return np.eye(spec.sizes[-1], dtype=dtype)[labels]


def accuracy(spec: NetworkSpec, params, x: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``x`` whose largest output is the label (computed by the harness
    in the parameters' dtype, the same way for every implementation)."""
    from harness.core.reference import activate

    a = x.astype(params[0][0].dtype, copy=False)
    for (W, b), name in zip(params, spec.activations):
        a = activate(name, a @ W.T + b)
    return float(np.mean(np.argmax(a, axis=1) == labels))


# --- the loop ------------------------------------------------------------------------


@dataclass
class TrainingRun:
    """One implementation's training: losses, accuracies, timings, and its distance
    from the reference trajectory after every epoch."""

    name: str
    dtype: str
    losses: list = field(default_factory=list)  # the implementation's loss at every step
    epoch_losses: list = field(default_factory=list)  # mean step loss per epoch
    test_accuracy: list = field(default_factory=list)  # per epoch
    epoch_seconds: list = field(default_factory=list)  # whole epoch: conversions, steps, updates
    step_seconds: list = field(default_factory=list)  # per epoch: Prepared.step (+ synchronize) alone
    divergence: list = field(default_factory=list)  # per epoch, relative, vs the reference
    tolerance: list = field(default_factory=list)  # per epoch
    snapshots: list = field(default_factory=list)  # parameters after every epoch (reference only)
    steps: int = 0
    error: str | None = None
    note: str = ""
    is_reference: bool = False
    is_twin: bool = False
    judged_epochs: int | None = None  # epochs whose divergence is judged (None: all)

    @property
    def final_loss(self) -> float:
        return self.epoch_losses[-1] if self.epoch_losses else math.nan

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracy[-1] if self.test_accuracy else math.nan

    @property
    def max_divergence(self) -> float:
        if not self.divergence:
            return math.nan
        return math.nan if any(math.isnan(d) for d in self.divergence) else max(self.divergence)

    @property
    def diverged(self) -> bool:
        """Beyond the tolerance (or NaN) after some judged epoch."""
        return self.first_divergent_epoch is not None

    @property
    def first_divergent_epoch(self) -> int | None:
        """Index of the first judged epoch beyond the tolerance, or ``None``."""
        if self.is_twin:
            return None
        judged = len(self.divergence) if self.judged_epochs is None else self.judged_epochs
        for epoch, (d, t) in enumerate(zip(self.divergence[:judged], self.tolerance)):
            if not d <= t:
                return epoch
        return None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.diverged and bool(self.epoch_losses)

    @property
    def seconds(self) -> float:
        return float(sum(self.epoch_seconds))

    @property
    def seconds_per_epoch(self) -> float:
        # The median leaves out the first epoch's one-time costs (torch.compile
        # compiles there) once there are three epochs; ``seconds`` has everything.
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else math.nan

    @property
    def steps_per_second(self) -> float:
        total = sum(self.step_seconds)
        return self.steps / total if total > 0 else math.nan

    def add_step(self, loss: float, epoch: int, step: int) -> None:
        """Record one step's loss; a NaN or infinite one ends the run."""
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss} at epoch {epoch + 1}, step {step + 1}: training blew up (try a lower --lr)")
        self.losses.append(loss)
        self.steps += 1

    def end_epoch(self, epoch: int, params, reference: TrainingRun | None, *, seconds: float, step_seconds: float,
                  n_batches: int, accuracy: float) -> None:
        """Record an epoch: its times, mean loss and test accuracy, and either the
        parameters (the reference keeps them) or the divergence from the reference's."""
        self.epoch_seconds.append(seconds)
        self.step_seconds.append(step_seconds)
        self.epoch_losses.append(sum(self.losses[-n_batches:]) / n_batches)
        self.test_accuracy.append(accuracy)
        if reference is None:
            self.snapshots.append([tuple(p.copy() for p in group) for group in params])
        elif epoch < len(reference.snapshots):
            self.divergence.append(relative_divergence(params, reference.snapshots[epoch]))
            self.tolerance.append(trajectory_tolerance(self.dtype, self.steps))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "reference": self.is_reference,
            "rounding_twin": self.is_twin,
            # Epochs whose divergence decided the verdict (null for the reference).
            "judged_epochs": None if self.is_reference else 0 if self.is_twin else (
                len(self.divergence) if self.judged_epochs is None else self.judged_epochs),
            "test_accuracy": _finite_or_none(self.final_accuracy),
            "final_loss": _finite_or_none(self.final_loss),
            "max_divergence": 0.0 if self.is_reference else _finite_or_none(self.max_divergence),
            "diverged": self.diverged,
            "seconds": self.seconds,
            "seconds_per_epoch": _finite_or_none(self.seconds_per_epoch),
            "steps_per_second": _finite_or_none(self.steps_per_second),
            "steps": self.steps,
            "epoch_losses": [_finite_or_none(v) for v in self.epoch_losses],
            "test_accuracy_per_epoch": self.test_accuracy,
            "divergence_per_epoch": [_finite_or_none(v) for v in self.divergence],
            "tolerance_per_epoch": self.tolerance,
            "error": self.error,
            "note": self.note,
        }


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None


def train(impl, dataset, config: TrainConfig, *, reference: TrainingRun | None = None, on_step=None) -> TrainingRun:
    """Train ``impl`` on ``dataset`` with ``config`` and return the record.

    With ``reference`` (the reference implementation's run, which keeps its
    parameters after every epoch) the divergence from it is measured after every
    epoch. ``on_step(run, epoch, step, steps_per_epoch)`` is called after every step
    (progress display). Whatever the implementation raises -- anything but the user's
    Ctrl-C, ``SystemExit`` included -- ends its run and is recorded in ``run.error``.
    """
    spec, dtype = config.spec, config.dtype
    run = TrainingRun(impl.name, dtype, is_reference=reference is None)
    params = initial_parameters(spec, config.seed, dtype)
    optimizer = SGD(params, config.lr, config.momentum)
    x_train = dataset.x_train.astype(dtype)
    y_train = targets(spec, dataset.y_train, dtype)
    try:
        with restoring_global_state():
            prepared = prepare(impl, spec, params, dtype=dtype, device=config.device)
        for epoch in range(config.epochs):
            batches = epoch_order(len(x_train), config.batch_size, epoch, config.seed)
            step_time = 0.0
            started = time.perf_counter()
            for i, index in enumerate(batches):
                with restoring_global_state():  # the implementation's calls; what they change is put back
                    native = prepared.batch(x_train[index], y_train[index])
                    t0 = time.perf_counter()
                    result = prepared.step(native)
                    prepared.synchronize()
                    # a worker times its own step: its round trip is not the step's speed
                    inside = getattr(prepared, "last_seconds", None)
                    step_time += inside if inside is not None else time.perf_counter() - t0
                    out = prepared.to_numpy(result)
                    loss = float(out.loss)
                    grads = [(np.asarray(dW, dtype), np.asarray(db, dtype)) for dW, db in out.grads]
                run.add_step(loss, epoch, i)
                optimizer.step(grads)
                with restoring_global_state():
                    prepared.set_params(params)
                if on_step is not None:
                    on_step(run, epoch, i + 1, len(batches))
            run.end_epoch(epoch, params, reference, seconds=time.perf_counter() - started, step_seconds=step_time,
                          n_batches=len(batches), accuracy=accuracy(spec, params, dataset.x_test, dataset.y_test))
    except ImplementationGone as exc:  # its worker died or hung
        run.error = f"{exc.verdict.value}: {exc}"
    except RemoteError as exc:  # it raised in its worker, which said what and where
        run.error = f"ERROR: {exc}"
    except BaseException as exc:  # a broken implementation -- even one that exits -- must not stop the others
        if user_interrupted(exc):
            raise
        run.error = f"{described(exc)}"
    return run


def train_and_compare(impls, dataset, config: TrainConfig, *, on_step=None, on_start=None) -> list[TrainingRun]:
    """Train the reference (the built-in ``numpy``), its rounding twin, and then every
    implementation in ``impls`` from the same initialisation on the same batches,
    each compared with the reference after every epoch. The reference is trained
    even when not in ``impls`` (its run then carries a note). Epochs after the twin
    leaves TWIN_GATE of the tolerance are not judged. ``on_start(name)`` is called
    before each run."""
    with watching_interrupts():
        return _train_and_compare(impls, dataset, config, on_step, on_start)


def _train_and_compare(impls, dataset, config, on_step, on_start):
    reference_impl = next((i for i in impls if isinstance(i, NumpyImplementation)), None)
    named = reference_impl is not None
    if reference_impl is None:
        reference_impl = NumpyImplementation()
    twin_impl = BatchReversed(reference_impl)
    runs = []
    for impl in [reference_impl, twin_impl, *(i for i in impls if i is not reference_impl)]:
        if on_start is not None:
            on_start(impl.name)
        reference = runs[0] if runs else None
        runs.append(train(impl, dataset, config, reference=reference, on_step=on_step))
    if not named:
        runs[0].note = "reference for the divergence"
    return judged_by_twin(runs)


def judged_by_twin(runs: list[TrainingRun]) -> list[TrainingRun]:
    """``runs`` = [reference, its rounding twin, others...]: mark the twin, and judge
    the others' divergence only for the epochs before the twin left TWIN_GATE of the
    tolerance."""
    twin = runs[1]
    twin.is_twin = True
    judged = next((e for e, (d, t) in enumerate(zip(twin.divergence, twin.tolerance)) if not d <= TWIN_GATE * t), None)
    if twin.error is not None:
        judged = 0  # without the twin, nothing tells rounding from error: judge nothing
    for run in runs[2:]:
        run.judged_epochs = judged
        if judged is not None and judged < len(run.divergence):
            run.note = (f"judged for {judged} of {len(run.divergence)} epochs: then numpy with each batch reversed "
                        f"drifted past {TWIN_GATE:g} of the tolerance (training amplifies rounding)")
    return runs
