"""Training as a task: one implementation trained against the reference's trajectory,
described as plain data (its worker, the data set, the configuration, the
reference's run) so that it runs wherever the executor puts it -- a local pool
process or a Dask worker -- in a worker process of its own, under the time limit
per call. ``train`` runs these side by side; the reference itself trains in the
harness first (every other run is measured against its parameters)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.executors.tasks import WorkerSpec, worker_in


@dataclass(frozen=True)
class TrainTask:
    """Train ``worker``'s implementation on ``dataset`` with ``config``, measured against
    ``reference`` (the reference implementation's ``TrainingRun``, with its snapshots)."""

    worker: WorkerSpec
    dataset: object  # harness.training.datasets.Dataset
    config: object  # harness.training.loop.TrainConfig
    reference: object  # harness.training.loop.TrainingRun
    timeout: float = 300.0  # seconds per call into the worker
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
