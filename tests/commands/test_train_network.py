import json
import os
import subprocess
import sys

import pytest

from harness.commands.main import main
from harness.commands.train_network import TORCH_CNN, trainees
from harness.networks.cnn import cnn
from tests.grading.classroom import ROOT
from tests.networks.providers import write_plugin


def run_cli(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cnn_reaches_97_percent_with_the_default_settings_numpy_and_torch_side_by_side(capsys, tmp_path):
    """Issue 12's bar, on seed 0 (seeds 0-4 give 97.8-98.9 %); its time is measured, not
    asserted (README, "train --model cnn")."""
    pytest.importorskip("torch")
    path = tmp_path / "train.json"
    code, out, err = run_cli(capsys, "--model", "cnn", "--json", str(path))
    assert code == 0, out + err
    record = json.loads(path.read_text())
    runs = record["implementations"]
    assert list(runs)[:2] == ["numpy", "numpy (batch reversed)"] and TORCH_CNN in runs
    assert all(run["test_accuracy"] >= 0.97 for run in runs.values()), {n: r["test_accuracy"] for n, r in runs.items()}
    assert not runs[TORCH_CNN]["diverged"] and runs[TORCH_CNN]["judged_epochs"] == 20
    assert runs[TORCH_CNN]["max_divergence"] < 1e-3 * runs[TORCH_CNN]["tolerance_per_epoch"][-1]
    assert record["config"] == {"data": "digits: 1437 train, 360 test, 64 features", "network": "cnn", "lr": 0.1,
                                "momentum": 0.9, "epochs": 20, "batch_size": 32, "dtype": "float64", "seed": 0,
                                "trainings_at_once": 1}


def test_the_reference_trains_even_when_only_another_is_named():
    pytest.importorskip("torch")
    chosen, _, reference = trainees(cnn(), [TORCH_CNN], threads=1)
    assert [t.name for t in chosen] == ["numpy", TORCH_CNN] and reference.name == "numpy"


def test_mlp_arguments_and_unknown_providers_are_refused(capsys):
    code, _, err = run_cli(capsys, "--model", "cnn", "--hidden", "100")
    assert code == 2 and err.strip() == "backprop-harness: error: --hidden applies to the MLP, not to --model cnn"
    code, _, err = run_cli(capsys, "--model", "cnn", "--impl", "nope")
    assert code == 2 and "--impl 'nope': no operator provider of that name" in err
    code, _, err = run_cli(capsys, "--model", "cnn", "--batch-size", "5000")
    assert code == 2 and "--batch-size 5000: larger than the 1437 training samples" in err
    code, out, err = run_cli(capsys, "--model", "cnn", "--scheduler", "nowhere")  # said before anything trains
    assert code == 2 and "--scheduler 'nowhere': expected a Dask scheduler address" in err and "epoch" not in out


def _without_times(run: dict) -> dict:
    return {k: v for k, v in run.items() if "second" not in k and k != "steps_per_second"}


def test_trainees_train_as_executor_tasks_and_one_that_exits_costs_only_its_own_run(tmp_path):
    """The default: every trainee but the reference (and its twin) is a task of the
    executor, run in a pool process, which starts a process of its own for it; a
    provider whose backward prints and calls ``os._exit(0)`` is that run's CRASHED
    error (its status and what it printed, tried once: the pool process lives on) and
    the exit status 1, the others train as they do in process (the same JSON, times
    aside), a wrong conv2d gradient diverges."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), write_plugin(tmp_path)]), "COLUMNS": "200"}
    quick = ["--model", "cnn", "--epochs", "1", "--impl", "numpy-copy", "--impl", "numpy-reversed"]
    reports = {}
    for how, extra in (("tasks", ["--impl", "numpy-exits", "-j", "2"]), ("in-process", ["--in-process"])):
        done = subprocess.run([sys.executable, "-m", "harness", "train", *quick, *extra, "--json", str(tmp_path / f"{how}.json")],
                              capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=600)
        assert done.returncode == 1, done.stdout + done.stderr
        reports[how] = json.loads((tmp_path / f"{how}.json").read_text())["implementations"]
    tasks, here = reports["tasks"], reports["in-process"]
    assert tasks["numpy-exits"]["error"].startswith("CRASHED: the worker died during step: exit status 0"), tasks["numpy-exits"]
    assert tasks["numpy-exits"]["error"].endswith("its stderr ends: conv2d backward: exiting now"), tasks["numpy-exits"]
    assert tasks["numpy-copy"]["error"] is None and not tasks["numpy-copy"]["diverged"]
    assert tasks["numpy-copy"]["epoch_losses"] == tasks["numpy"]["epoch_losses"]
    assert tasks["numpy-reversed"]["diverged"] and tasks["numpy-reversed"]["error"] is None
    for name in ("numpy", "numpy (batch reversed)", "numpy-copy", "numpy-reversed"):
        assert _without_times(tasks[name]) == _without_times(here[name]), name


HANGS_SOURCE = """
import os
import time
from harness import ops
from harness.ops.numpy_convolution import Conv2d

class HangsInBackward(Conv2d):
    calls = 0

    def vjp(self, inputs, cotangents, **params):
        HangsInBackward.calls += 1
        if HangsInBackward.calls == 3:
            print("conv2d backward: hanging now", flush=True)
            with open(os.environ["HANGS_PID_FILE"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        return super().vjp(inputs, cotangents, **params)

HANGS = {**ops.provider("numpy").operators, "conv2d": HangsInBackward}


class LiesAboutItself(Conv2d):  # a flipped weight gradient, and a backward that hides it
    def weight_gradient(self, g, x, w, stride, padding, dilation):
        import harness.training.loop
        harness.training.loop.relative_divergence = lambda *args: 0.0  # no divergence, in the process it runs in
        return np.flip(super().weight_gradient(g, x, w, stride, padding, dilation), axis=(2, 3))

import numpy as np
LIAR = {**ops.provider("numpy").operators, "conv2d": LiesAboutItself}
"""


def test_a_trainee_that_hangs_is_killed_after_the_time_limit_and_one_that_patches_the_judge_still_diverges(tmp_path):
    """A provider whose third conv2d backward sleeps for an hour: with ``--timeout 10`` its
    run is TIMEOUT (the limit is per step: its first two steps ended), what it printed
    is in the error, the process that hung is gone. A provider with a flipped conv2d
    weight gradient whose backward replaces the harness's divergence with 0: DIVERGED
    all the same (its operators run in a worker; the divergence is measured where the
    task runs). The other trainee's run is whole, and the exit status is 1.
    ``--timeout`` with ``--in-process`` is refused."""
    from harness.ops.registry import ENTRY_POINT_GROUP
    from tests.entry_points import write_distribution

    (tmp_path / "hangs").mkdir()
    hangs = write_distribution(tmp_path / "hangs", {"numpy-hangs": "cnnhangs:HANGS", "numpy-liar": "cnnhangs:LIAR"}, {"cnnhangs": HANGS_SOURCE},
                               name="cnn-hangs", group=ENTRY_POINT_GROUP)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), write_plugin(tmp_path), hangs]), "COLUMNS": "200",
           "HANGS_PID_FILE": str(tmp_path / "hanging.pid")}
    out = tmp_path / "run.json"
    done = subprocess.run([sys.executable, "-m", "harness", "train", "--model", "cnn", "--epochs", "1", "--impl", "numpy-copy",
                           "--impl", "numpy-hangs", "--impl", "numpy-liar", "-j", "2", "--timeout", "10", "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    runs = json.loads(out.read_text())["implementations"]
    error = runs["numpy-hangs"]["error"]
    assert error.startswith("TIMEOUT: no answer to step within 10 s"), error
    assert error.endswith("its stderr ends: conv2d backward: hanging now"), error
    assert "numpy-hangs: TIMEOUT: no answer to step within 10 s" in done.stdout
    assert runs["numpy-copy"]["error"] is None and not runs["numpy-copy"]["diverged"]
    assert runs["numpy-copy"]["epoch_losses"] == runs["numpy"]["epoch_losses"]
    assert runs["numpy-liar"]["error"] is None and runs["numpy-liar"]["diverged"], runs["numpy-liar"]
    assert runs["numpy-liar"]["max_divergence"] > 1e-3
    with pytest.raises(ProcessLookupError):  # the process that hung is gone
        os.kill(int((tmp_path / "hanging.pid").read_text()), 0)
    code = main(["train", "--model", "cnn", "--in-process", "--timeout", "4"])
    assert code == 2
