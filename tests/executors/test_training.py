"""Training as executor tasks: the same trainings give the same runs, verdicts, JSON
and exit status on the harness's threads (live workers, the default) and on a Dask
LocalCluster (each task starting its worker there), a wrong gradient included; a
task is plain data; times measured side by side are said to be so."""

import json
import pickle

import pytest

from tests.grading.classroom import ROOT, harness

WRONG = "tests.training.test_loop:gradient_one_percent_too_large"
QUICK = ("--hidden", "16", "--epochs", "2", "--threads", "1")


def _comparable(document: dict) -> dict:
    """A train report without what differs between runs of the same trainings: times."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "second" not in k and k != "trainings_at_once"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(document)


def test_train_gives_the_same_report_and_exit_status_locally_and_on_dask(tmp_path):
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    impls = ["--impl", "numpy", "--impl", "example-numpy", "--impl", WRONG, "--impl", "tests.corpus:SignFlipped"]
    reports = {}
    for how, options in (("local", ["-j", "2"]), ("dask", ["--scheduler", "local", "-j", "2"])):
        done = harness("train", *impls, *QUICK, "--json", str(tmp_path / f"{how}.json"), *options, cwd=ROOT)
        document = json.loads((tmp_path / f"{how}.json").read_text())
        reports[how] = (done.returncode, _comparable(document), document["config"]["trainings_at_once"])
        assert "trainings at once: their times are measured while they share the cores" in done.stdout, done.stdout
    assert reports["local"][:2] == reports["dask"][:2]
    assert reports["local"][2] == 2 and reports["dask"][2] == "dask"
    code, report, _ = reports["dask"]
    runs = report["implementations"]
    assert code == 1
    assert runs["example-numpy"]["error"] is None and not runs["example-numpy"]["diverged"]
    assert runs[WRONG]["diverged"] and runs[WRONG]["error"] is None  # trained, and drifted away from numpy
    assert "TrainingDiverged" in runs["tests.corpus:SignFlipped"]["error"]  # the sign flip blows the loss up
    assert runs["example-numpy"]["epoch_losses"] == runs["numpy"]["epoch_losses"]  # the same batches, not zeros


def test_one_training_at_a_time_by_default_and_nothing_said_about_sharing(tmp_path):
    done = harness("train", "--impl", "numpy", "--impl", "example-numpy", *QUICK, "--json", str(tmp_path / "t.json"),
                   cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "t.json").read_text())["config"]["trainings_at_once"] == 1
    assert "trainings at once" not in done.stdout


def test_a_training_task_is_plain_data_and_runs_here_as_on_an_executor():
    from harness.commands.train import network_spec
    from harness.executors.tasks import PYTHON, WorkerSpec
    from harness.executors.training import TrainTask, run_train_task
    from harness.impls.numpy_impl import NumpyImplementation
    from harness.training.datasets import load_dataset
    from harness.training.loop import TrainConfig, train

    class Args:
        hidden, activation, loss = "8", "relu", "cross_entropy"

    dataset = load_dataset("digits", None, seed=0)
    config = TrainConfig(network_spec(Args(), dataset.n_features, dataset.n_classes), epochs=1)
    reference = train(NumpyImplementation(), dataset, config)
    for target, drifts in (("example-numpy", False), (WRONG, True)):
        task = pickle.loads(pickle.dumps(TrainTask(WorkerSpec(PYTHON, target, name=target), dataset, config, reference,
                                                   timeout=60)))
        run = run_train_task(task)
        assert run.error is None and run.name == target and run.steps == reference.steps
        assert (run.max_divergence > run.tolerance[-1]) is drifts, (run.max_divergence, run.tolerance)


def test_train_model_gives_the_same_report_locally_and_on_dask(tmp_path):
    """``train --model cnn``'s trainees as tasks: in local pool processes and on a Dask
    LocalCluster the same runs (times aside), a wrong conv2d gradient DIVERGED on both."""
    pytest.importorskip("distributed", reason="Dask is an optional extra (pip install 'backprop-harness[dask]')")
    import os
    import subprocess
    import sys

    from tests.networks.providers import write_plugin

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), write_plugin(tmp_path)]), "COLUMNS": "200"}
    reports = {}
    for how, options in (("local", ["-j", "2"]), ("dask", ["--scheduler", "local", "-j", "2"])):
        done = subprocess.run([sys.executable, "-m", "harness", "train", "--model", "cnn", "--epochs", "1",
                               "--impl", "numpy-copy", "--impl", "numpy-reversed", *options,
                               "--json", str(tmp_path / f"{how}.json")],
                              capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
        document = json.loads((tmp_path / f"{how}.json").read_text())
        reports[how] = (done.returncode, _comparable(document))
    assert reports["local"] == reports["dask"]
    code, report = reports["dask"]
    runs = report["implementations"]
    assert code == 1 and runs["numpy-reversed"]["diverged"] and not runs["numpy-copy"]["diverged"]
    assert runs["numpy-copy"]["epoch_losses"] == runs["numpy"]["epoch_losses"]
