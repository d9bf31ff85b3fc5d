"""Training as a task: one implementation trained against the reference's trajectory,
described as plain data (its worker, the data set, the configuration, the
reference's run) so that it runs wherever the executor puts it -- a local pool
process or a Dask worker -- in a worker process of its own, under the time limit
per call. ``train`` runs these side by side; the reference itself trains in the
harness first (every other run is measured against its parameters).

``train --model`` trains networks built from operator providers: a
``NetworkTrainTask`` names its trainee (a provider, or ``torch-cnn``) and carries the
network as plain data. The task trains it where the executor runs it (a local pool
process or a Dask worker), its parameters, update and judging there, and the
trainee's step is built and run in a worker process the task starts
(``harness.executors.network_worker``), never in the harness's nor in the executor's:
a provider whose operators exit, crash or hang ends that worker only, and the task
reports it as its run's CRASHED or TIMEOUT error; one that monkeypatches the harness
changes nothing of the judging. The executor's process lives on: a pool whose process
dies is broken as a whole, every task in it with it, and CPython's handling of a broken
pool has had deadlocks of its own (gh-125451, fixed in 3.12.8 and 3.13.1)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.executors.tasks import WorkerSpec, worker_in
from harness.workers.remote import DEFAULT_TIMEOUT


@dataclass(frozen=True)
class TrainTask:
    """Train ``worker``'s implementation on ``dataset`` with ``config``, measured against
    ``reference`` (the reference implementation's ``TrainingRun``, with its snapshots)."""

    worker: WorkerSpec
    dataset: object  # harness.training.datasets.Dataset
    config: object  # harness.training.loop.TrainConfig
    reference: object  # harness.training.loop.TrainingRun
    timeout: float = DEFAULT_TIMEOUT  # seconds per call into the worker
    threads: int | None = 1  # BLAS/OpenMP threads in the worker, pinned as for timing


def run_train_task(task: TrainTask):
    """Run ``task`` here and return its ``TrainingRun``; what the implementation does
    (crash, hang, wrong gradients) is in the run's ``error`` and divergence."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="backprop-train-", ignore_cleanup_errors=True) as home:
        impl = worker_in(home, task.worker, timeout=task.timeout, threads=task.threads, pin=True, return_inputs=False)
        try:
            return train_on(impl, task)
        finally:
            impl.close()


def train_on(impl, task: TrainTask, *, on_step=None):
    """``task`` trained on ``impl``: the worker ``run_train_task`` started, or a live
    one the harness lends a task run in its own threads; the same run either way."""
    from harness.training.loop import train

    return train(impl, task.dataset, task.config, reference=task.reference, on_step=on_step)


@dataclass(frozen=True)
class NetworkTrainTask:
    """Train ``trainee`` (an operator provider's name, or ``TORCH_CNN``) on ``network``
    (``harness.networks.cnn.as_plain``) with ``setup`` (a ``NetworkTraining`` without its
    ``accuracy``, a closure, which is rebuilt where the task runs with
    ``reference_provider``'s chain), measured against ``reference``'s run."""

    trainee: str
    network: dict
    dataset: object  # harness.training.datasets.Dataset
    setup: object  # harness.training.network_loop.NetworkTraining, accuracy None
    reference: object  # harness.training.loop.TrainingRun
    reference_provider: str = "numpy"
    threads: int | None = 1  # BLAS/OpenMP (and torch) threads where the task runs
    timeout: float = DEFAULT_TIMEOUT  # seconds for building the trainee's step, and then for each step


def run_network_train_task(task: NetworkTrainTask):
    """Train ``task``'s trainee here and return its ``TrainingRun``, its step run in a
    worker process (``harness.executors.network_worker``): this process keeps the
    parameters, the update and the judging, the worker computes each step's loss and
    gradients. A worker that exits, crashes or takes longer than ``task.timeout`` for
    building the step or for a step is the run's CRASHED or TIMEOUT error, with the
    end of its stderr; what the step raises is its ERROR."""
    import dataclasses
    import pickle
    import sys
    import tempfile
    from pathlib import Path

    from harness.core.process_settings import pin_threads
    from harness.executors.network_worker import RemoteNetworkStep
    from harness.networks.cnn import from_plain
    from harness.networks.providers import OpsProvider
    from harness.networks.steps import chain_accuracy
    from harness.training.loop import TrainingRun
    from harness.training.network_loop import Trainee, train_step_function

    network = from_plain(task.network)
    setup = dataclasses.replace(task.setup, accuracy=chain_accuracy(network, OpsProvider(task.reference_provider)))
    if task.threads:
        pin_threads(task.threads)  # numpy's pools here (the update, the accuracy), as in the worker
    with tempfile.TemporaryDirectory(prefix="backprop-train-", ignore_cleanup_errors=True) as home:
        given = Path(home, "task.pickle")
        given.write_bytes(pickle.dumps((list(sys.path), pickle.dumps(task))))
        step = RemoteNetworkStep(given, task.timeout)
        try:
            error = step.build()
            run = (TrainingRun(task.trainee, setup.dtype, error=error) if error else
                   train_step_function(Trainee(task.trainee, step), task.dataset, setup, reference=task.reference))
        finally:
            step.close()
    if step.error:  # the worker's own words, not the exception train_step_function caught
        run.error = step.error
    return run


