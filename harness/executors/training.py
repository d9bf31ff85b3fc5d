"""Training as a task: one implementation trained against the reference's trajectory,
described as plain data (its worker, the data set, the configuration, the
reference's run) so that it runs wherever the executor puts it -- a local pool
process or a Dask worker -- in a worker process of its own, under the time limit
per call. ``train`` runs these side by side; the reference itself trains in the
harness first (every other run is measured against its parameters).

``train --model`` trains networks built from operator providers: a
``NetworkTrainTask`` names its trainee (a provider, or ``torch-cnn``) and carries the
network as plain data, and the trainee's step is built and run in a process the task
starts (``python -m harness.executors.training``), never in the harness's nor in the
one the executor gave the task (a local pool process or a Dask worker): one whose
operators exit or crash ends that process only, and the task reports it as its run's
CRASHED error. The executor's process lives on: a pool whose process dies is broken
as a whole, every task in it with it, and CPython's handling of a broken pool has had
deadlocks of its own (gh-125451, fixed in 3.12.8 and 3.13.1)."""

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


def run_network_train_task(task: NetworkTrainTask):
    """Run ``task`` in a process of its own (``train_network_here`` there) and return its
    ``TrainingRun``; a process that ends without one (an exit, a crash, a signal) is
    the run's CRASHED error, with the end of what it wrote to stderr. The task and the
    run go through files in a temporary folder; the process's stdout goes to its
    stderr, of which only a bounded tail is kept (``harness.workers.process``)."""
    import pickle
    import sys
    import tempfile
    from pathlib import Path

    from harness.training.loop import TrainingRun
    from harness.workers.process import WorkerProcess, describe_exit

    with tempfile.TemporaryDirectory(prefix="backprop-train-", ignore_cleanup_errors=True) as home:
        given, taken = Path(home, "task.pickle"), Path(home, "run.pickle")
        given.write_bytes(pickle.dumps((list(sys.path), pickle.dumps(task))))
        worker = WorkerProcess([sys.executable, "-m", "harness.executors.training", str(given), str(taken)])
        try:
            worker.proc.wait()
        finally:
            worker.kill(grace=0)  # (reaps it, and its group: nothing it started lives on)
        ended = describe_exit(worker.proc.returncode)
        if worker.proc.returncode == 0 and taken.exists():
            try:
                return pickle.loads(taken.read_bytes())
            except Exception as exc:  # noqa: BLE001 - a run file the process left unreadable
                ended = f"exit status 0, its run unreadable ({type(exc).__name__})"
        elif worker.proc.returncode == 0:
            ended = "exit status 0, before it returned its run"
    tail = worker.stderr.last_lines(600)
    return TrainingRun(task.trainee, task.setup.dtype,
                       error=f"CRASHED: the process training it ended ({ended}); its operators run in that process, so "
                             f"the exit or crash is likely theirs" + (f"; its stderr ends: {tail}" if tail else ""))


def _train_network_in_this_process(given: str, taken: str) -> None:
    """``python -m harness.executors.training GIVEN TAKEN``: the task in ``given`` trained
    here, its run written to ``taken`` (whole, or not at all)."""
    import os
    import pickle
    import sys
    from pathlib import Path

    os.dup2(2, 1)  # what the trainee prints goes to stderr, whose tail the task keeps
    path, task = pickle.loads(Path(given).read_bytes())
    sys.path[:] = path  # where the process the task was given finds the trainee's plug-in
    run = train_network_here(pickle.loads(task))
    part = Path(taken + ".part")
    part.write_bytes(pickle.dumps(run))
    part.replace(taken)


def train_network_here(task: NetworkTrainTask):
    """Run ``task`` here and return its ``TrainingRun``: what the trainee raises, while it
    is built or trained, is in the run's ``error``."""
    import dataclasses

    from harness.core.containment import described, user_interrupted
    from harness.core.process_settings import pin_threads
    from harness.networks.cnn import from_plain
    from harness.networks.providers import OpsProvider
    from harness.networks.steps import chain_accuracy, chain_step
    from harness.networks.torch_cnn import TORCH_CNN, torch_cnn_step
    from harness.training.loop import TrainingRun
    from harness.training.network_loop import Trainee, train_step_function

    network = from_plain(task.network)
    setup = dataclasses.replace(task.setup, accuracy=chain_accuracy(network, OpsProvider(task.reference_provider)))
    if task.threads:
        pin_threads(task.threads)  # numpy's and torch's pools, as the harness pins its own (this process is the task's)
    try:
        step = (torch_cnn_step(network, task.threads) if task.trainee == TORCH_CNN
                else chain_step(network, OpsProvider(task.trainee)))
    except BaseException as exc:  # a plug-in provider that cannot be built: its run's error
        if user_interrupted(exc):
            raise
        return TrainingRun(task.trainee, setup.dtype, error=described(exc))
    return train_step_function(Trainee(task.trainee, step), task.dataset, setup, reference=task.reference)


if __name__ == "__main__":
    import sys

    _train_network_in_this_process(*sys.argv[1:3])
