import importlib.util
import json

import pytest

from harness.commands.main import main
from harness.commands.running import Placement, close
from harness.commands.train import selected_implementations
from harness.core.spec import NetworkSpec
from harness.impls.numpy_impl import NumpyImplementation
from harness.workers.remote import WorkerImplementation
from tests.training.test_datasets import tiny_mnist

WRONG = "tests.training.test_loop:gradient_one_percent_too_large"


def run_cli(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_numpy_trains_and_writes_json(capsys, tmp_path):
    path = tmp_path / "train.json"
    code, out, err = run_cli(capsys, "--impl", "numpy", "--epochs", "3", "--json", str(path))
    assert code == 0, err
    assert "numpy" in out and "DIVERGED" not in out and "ERROR" not in out
    record = json.loads(path.read_text())
    entry = record["implementations"]["numpy"]
    for key in ("test_accuracy", "final_loss", "max_divergence", "seconds"):
        assert key in entry
    assert entry["test_accuracy"] > 0.9 and entry["max_divergence"] == 0.0 and entry["seconds"] > 0
    assert record["config"]["network"] == "64-500-10 relu,identity cross_entropy"
    assert len(entry["test_accuracy_per_epoch"]) == 3


def test_wrong_gradient_exits_1_and_says_diverged(capsys, tmp_path):
    path = tmp_path / "train.json"
    code, out, err = run_cli(capsys, "--impl", "numpy", "--impl", WRONG, "--epochs", "2", "--json", str(path))
    assert code == 1
    assert f"{WRONG}: DIVERGED from numpy after epoch 1: relative divergence" in out
    entry = json.loads(path.read_text())["implementations"][WRONG]
    assert entry["diverged"] and entry["max_divergence"] > 1e-3


def test_plot_is_written(capsys, tmp_path):
    path = tmp_path / "curves.png"
    code, _, err = run_cli(capsys, "--impl", "numpy", "--epochs", "2", "--hidden", "50", "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_from_idx_files_trains_the_seed_network(capsys, tmp_path):
    tiny_mnist(tmp_path, n_train=40, n_test=10, gz=True)
    path = tmp_path / "train.json"
    code, _, err = run_cli(capsys, "--data", "mnist", "--data-dir", str(tmp_path), "--impl", "numpy",
                           "--epochs", "1", "--batch-size", "20", "--json", str(path))
    assert code == 0, err
    record = json.loads(path.read_text())
    assert record["config"]["network"] == "784-500-10 relu,identity cross_entropy"
    assert record["implementations"]["numpy"]["steps"] == 2


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--data", "cifar"], "--data 'cifar': unknown data set"),
        (["--batch-size", "5000"], "--batch-size 5000: larger than the 1437 training samples of digits"),
        (["--lr", "0"], "argument --lr: 0.0 is not a finite number > 0"),
        (["--lr", "-0.1"], "argument --lr: -0.1 is not a finite number > 0"),
        (["--lr", "fast"], "argument --lr: 'fast' is not a number"),
        (["--momentum", "1"], "argument --momentum: 1.0 is not in [0, 1)"),
        (["--epochs", "0"], "argument --epochs: 0 is not >= 1"),
        (["--impl", "nosuch"], "--impl 'nosuch': no implementation of that name"),
        (["--impl", "pure-python", "--dtype", "float32"], "--impl pure-python: cannot train 64-500-10"),
        (["--hidden", "wide"], "--hidden 'wide': expected comma-separated integers"),
        (["--activation", "swish"], "unknown activation 'swish'"),
        (["--data", "mnist"], "--data mnist needs --data-dir"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("backprop-harness: error: ")
    assert expected in err, err


def test_data_dir_without_the_files_is_one_line_naming_the_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--data", "mnist", "--data-dir", str(tmp_path))
    assert code == 2 and err.count("\n") == 1
    assert f"{tmp_path}/train-images-idx3-ubyte: no such file" in err


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "workers"])
def test_default_selection_leaves_pure_python_out_and_says_why(in_process):
    where = Placement(in_process=in_process, timeout=None if in_process else 60.0)
    spec = NetworkSpec((64, 500, 10), ("relu", "identity"), "cross_entropy")
    impls, skipped, failures = selected_implementations(None, spec, "float64", None, 32, where)
    names = [i.name for i in impls]
    assert "numpy" in names and "pure-python" not in names and not failures
    # the reference numpy trains in the harness's process; the others in workers
    assert isinstance(next(i for i in impls if i.name == "numpy"), NumpyImplementation)
    assert all(isinstance(i, WorkerImplementation) != in_process for i in impls if i.name != "numpy")
    assert "pure-python" in skipped and "--impl" in skipped["pure-python"]
    if importlib.util.find_spec("torch") is not None:
        assert "torch" in names
    close(impls)
    # Named explicitly, pure-python is trained.
    impls, skipped, _ = selected_implementations(["pure-python"], spec, "float64", None, 32, where)
    assert [i.name for i in impls] == ["pure-python"] and not skipped
    close(impls)
