import json

import pytest

from harness.commands.main import main
from harness.commands.train_network import TORCH_CNN, trainees
from harness.networks.cnn import cnn


def run_cli(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cnn_trains_with_numpy_and_torch_side_by_side(capsys, tmp_path):
    pytest.importorskip("torch")
    path = tmp_path / "train.json"
    code, out, err = run_cli(capsys, "--model", "cnn", "--epochs", "2", "--json", str(path))
    assert code == 0, out + err
    record = json.loads(path.read_text())
    names = list(record["implementations"])
    assert names[:2] == ["numpy", "numpy (batch reversed)"] and TORCH_CNN in names
    torch_run = record["implementations"][TORCH_CNN]
    assert not torch_run["diverged"] and torch_run["max_divergence"] < 1e-12
    assert record["implementations"]["numpy"]["test_accuracy"] > 0.85
    assert record["config"]["network"] == "cnn"


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
