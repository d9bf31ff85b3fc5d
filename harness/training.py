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

from harness.spec import NetworkSpec

REFERENCE = "numpy"

# Left out of the default selection: a pure-Python step at 64-500-10, batch 32, takes
# ~0.27 s (measured: 12 s per digits epoch, so ~4 minutes for the default 20 epochs).
SLOW_TO_TRAIN = {"pure-python": "a pure-Python epoch on digits 64-500-10 takes ~12 s; name it with --impl"}


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


def targets(spec: NetworkSpec, labels: np.ndarray, dtype: str) -> np.ndarray:
    """What the loss compares against: labels for cross-entropy, one-hot rows for MSE."""
    if spec.loss == "cross_entropy":
        return labels
    return np.eye(spec.sizes[-1], dtype=dtype)[labels]


def accuracy(spec: NetworkSpec, params, x: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``x`` whose largest output is the label (computed by the harness
    in the parameters' dtype, the same way for every implementation)."""
    from harness.reference import activate

    a = x.astype(params[0][0].dtype, copy=False)
    for (W, b), name in zip(params, spec.activations):
        a = activate(name, a @ W.T + b)
    return float(np.mean(np.argmax(a, axis=1) == labels))


# --- trajectory agreement ------------------------------------------------------------

# Two correct implementations' trajectories differ by rounding alone. Measured as the
# relative divergence max over tensors of max|p - p_ref| / max|p_ref|: one step's
# gradients differ by a few eps relative (sums over fan-in or batch taken in
# different orders), and SGD moves the parameters by lr * g, a fraction of |p|, so
# each step adds an independent difference of a few eps relative. Their signs are
# random, so after T steps the sum grows like eps * sqrt(T) (a random walk); near a
# minimum SGD contracts and damps it, while momentum (0.9 multiplies a step's
# displacement by up to 10) and a non-convex loss amplify it.
# The tolerance is TRAJECTORY_FACTOR * eps(dtype) * sqrt(T). Measured on digits
# 64-500-10 (benchmarks/train_digits.py, seeds 0-4, 880 steps, lr 0.1 momentum 0.9
# and lr 0.01 plain): torch and torch-compile against numpy stay within
# 1 * eps * sqrt(T) in float64 throughout; in float32 within ~10 * eps * sqrt(T)
# until a ReLU input rounds to either side of 0 in one implementation only, after
# which the gap jumps (seen up to 2300 * eps * sqrt(T) by epoch 19 with seed 1).
# 10**4 covers that with a margin of 4 and stays far below a wrong gradient: a 1%
# error in its scale puts the trajectory ~5e-2 away after one epoch (44 steps),
# against tolerances of 8e-3 (float32) and 1.5e-11 (float64).
#
# Where training is chaotic, even that fails: after such a jump the gap can grow
# exponentially, to 0.1 (trajectories unrelated) in float32 within 20 epochs, and
# no tolerance separates rounding from a wrong gradient any more. The harness
# detects this with a twin of the reference (``BatchReversed``: the same numpy code
# on each batch's rows in reverse order, which changes nothing but the order of the
# sums over the batch): once the twin drifts beyond TWIN_GATE of the tolerance,
# rounding is being amplified faster than the bound assumes, and later epochs are
# reported but not judged.
TRAJECTORY_FACTOR = 1e4
TWIN_GATE = 0.1


def trajectory_tolerance(dtype: str, steps: int) -> float:
    """Largest relative divergence from the reference allowed after ``steps`` steps."""
    return TRAJECTORY_FACTOR * float(np.finfo(np.dtype(dtype)).eps) * math.sqrt(max(steps, 1))


def relative_divergence(params, reference) -> float:
    """``max`` over tensors of ``max|p - p_ref| / max|p_ref|`` (NaN if either holds a NaN)."""
    worst = 0.0
    for pair, ref_pair in zip(params, reference):
        for p, ref in zip(pair, ref_pair):
            ref64 = ref.astype(np.float64)
            scale = float(np.max(np.abs(ref64))) or 1.0
            diff = float(np.max(np.abs(p.astype(np.float64) - ref64))) / scale
            if not math.isfinite(diff):
                return math.nan
            worst = max(worst, diff)
    return worst


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
    (progress display). An exception inside the implementation ends its run and is
    recorded in ``run.error``.
    """
    spec, dtype = config.spec, config.dtype
    run = TrainingRun(impl.name, dtype, is_reference=reference is None)
    params = initial_parameters(spec, config.seed, dtype)
    optimizer = SGD(params, config.lr, config.momentum)
    x_train = dataset.x_train.astype(dtype)
    y_train = targets(spec, dataset.y_train, dtype)
    try:
        prepared = impl.prepare(spec, params, dtype=dtype, device=config.device)
        for epoch in range(config.epochs):
            batches = epoch_order(len(x_train), config.batch_size, epoch, config.seed)
            epoch_loss, step_time = 0.0, 0.0
            started = time.perf_counter()
            for i, index in enumerate(batches):
                native = prepared.batch(x_train[index], y_train[index])
                t0 = time.perf_counter()
                result = prepared.step(native)
                prepared.synchronize()
                step_time += time.perf_counter() - t0
                out = prepared.to_numpy(result)
                loss = float(out.loss)
                if not math.isfinite(loss):
                    raise TrainingDiverged(f"loss is {loss} at epoch {epoch + 1}, step {i + 1}: training blew up (try a lower --lr)")
                optimizer.step([(np.asarray(dW, dtype), np.asarray(db, dtype)) for dW, db in out.grads])
                prepared.set_params(params)
                run.losses.append(loss)
                epoch_loss += loss
                run.steps += 1
                if on_step is not None:
                    on_step(run, epoch, i + 1, len(batches))
            run.epoch_seconds.append(time.perf_counter() - started)
            run.step_seconds.append(step_time)
            run.epoch_losses.append(epoch_loss / len(batches))
            run.test_accuracy.append(accuracy(spec, params, dataset.x_test, dataset.y_test))
            if reference is None:
                run.snapshots.append([(W.copy(), b.copy()) for W, b in params])
            elif epoch < len(reference.snapshots):
                run.divergence.append(relative_divergence(params, reference.snapshots[epoch]))
                run.tolerance.append(trajectory_tolerance(dtype, run.steps))
    except Exception as exc:  # a broken implementation must not stop the others
        run.error = f"{type(exc).__name__}: {exc}"
    return run


def train_and_compare(impls, dataset, config: TrainConfig, *, on_step=None, on_start=None) -> list[TrainingRun]:
    """Train the reference (``numpy``), its rounding twin, and then every
    implementation in ``impls`` from the same initialisation on the same batches,
    each compared with the reference after every epoch. The reference is trained
    even when not in ``impls`` (its run then carries a note). Epochs after the twin
    leaves TWIN_GATE of the tolerance are not judged. ``on_start(name)`` is called
    before each run."""
    from harness.registry import resolve

    reference_impl = next((i for i in impls if i.name == REFERENCE), None)
    named = reference_impl is not None
    if reference_impl is None:
        reference_impl = resolve(REFERENCE)
    twin_impl = BatchReversed(reference_impl)
    runs = []
    for impl in [reference_impl, twin_impl, *(i for i in impls if i.name != REFERENCE)]:
        if on_start is not None:
            on_start(impl.name)
        reference = runs[0] if runs else None
        runs.append(train(impl, dataset, config, reference=reference, on_step=on_step))
    reference, twin = runs[0], runs[1]
    if not named:
        reference.note = "reference for the divergence"
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


class BatchReversed:
    """An implementation run on each batch's rows in reverse order: mathematically the
    same gradient (a mean over the batch), rounded differently. Trained beside its
    original, it shows how far rounding alone moves a trajectory in this run."""

    def __init__(self, inner):
        self.inner = inner
        self.name = f"{inner.name} (batch reversed)"
        self.capabilities = inner.capabilities

    def prepare(self, spec, params, *, dtype="float64", device=None):
        return _BatchReversedPrepared(self.inner.prepare(spec, params, dtype=dtype, device=device))


class _BatchReversedPrepared:
    def __init__(self, inner):
        self.inner = inner

    def batch(self, x, y):
        return self.inner.batch(x[::-1], y[::-1])

    def __getattr__(self, name):  # step, to_numpy, synchronize, set_params: the original's
        return getattr(self.inner, name)
