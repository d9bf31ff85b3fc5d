"""A ``train --model`` trainee's step in a worker process (``RemoteNetworkStep``): the
same numbers as the step built here, bit for bit; a trainee that cannot be built, a
step that raises and a worker that dies are each said, never a traceback."""

import os
import pickle
import signal

import numpy as np
import pytest

from harness.core.out_of_process import ImplementationGone
from harness.executors.network_worker import RemoteNetworkStep
from harness.executors.training import NetworkTrainTask
from harness.networks.cnn import as_plain, cnn
from harness.networks.providers import OpsProvider
from harness.networks.steps import chain_step


def _given(tmp_path, trainee: str):
    import sys

    task = NetworkTrainTask(trainee, as_plain(cnn()), None, None, None)
    path = tmp_path / "task.pickle"
    path.write_bytes(pickle.dumps((list(sys.path), pickle.dumps(task))))
    return path


def _batch(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64)), rng.integers(0, 10, n)


def test_the_step_in_a_worker_gives_the_step_built_here_bit_for_bit(tmp_path):
    network = cnn()
    params = network.initial_parameters(0)
    x, y = _batch()
    here_loss, here_grads = chain_step(network, OpsProvider("numpy"))(params, x, y)
    step = RemoteNetworkStep(_given(tmp_path, "numpy"), timeout=60)
    try:
        assert step.build() == ""
        for _ in range(2):  # the second step in the same worker: nothing kept from the first
            loss, grads = step(params, x, y)
            assert float(loss) == float(here_loss)
            assert [len(g) for g in grads] == [len(g) for g in here_grads]
            for got, want in zip((a for g in grads for a in g), (a for g in here_grads for a in g)):
                assert got.dtype == np.asarray(want).dtype and np.array_equal(got, want)
    finally:
        step.close()
    assert step.error == ""


def test_a_trainee_that_cannot_be_built_or_whose_worker_dies_is_said(tmp_path):
    step = RemoteNetworkStep(_given(tmp_path, "no-such-provider"), timeout=60)
    try:
        why = step.build()
    finally:
        step.close()
    assert why.startswith("ValueError: provider 'no-such-provider' is not known"), why

    step = RemoteNetworkStep(_given(tmp_path, "numpy"), timeout=60)
    try:
        assert step.build() == ""
        os.kill(step.worker.pid, signal.SIGKILL)  # the worker dies between two steps
        step.worker.proc.wait()
        x, y = _batch()
        with pytest.raises(ImplementationGone):
            step(cnn().initial_parameters(0), x, y)
    finally:
        step.close()
    assert step.error.startswith("CRASHED: the worker died during step: killed by SIGKILL"), step.error
