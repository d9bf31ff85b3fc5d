import json

import pytest

from harness.commands.main import main
from harness.networks import cnn as cnn_module
from tests.networks.providers import registered
from tests.operator_corpus import convolution as conv


@pytest.fixture
def small_cnn(monkeypatch):
    """--model cnn at 2 channels and 4x4 images: the same chain, checked in seconds."""
    monkeypatch.setitem(cnn_module.MODELS, "cnn", lambda **sizes: cnn_module.cnn(channels=2, image=4))


def run_cli(capsys, *argv):
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_numpy_cnn_passes_in_both_dtypes(capsys, tmp_path, small_cnn):
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "--model", "cnn", "--provider", "numpy", "--json", str(path))
    assert code == 0, out + err
    report = json.loads(path.read_text())
    cases = [run["case"] for run in report["runs"]]
    assert report["ok"] and all(run["impl"] == "cnn[numpy]" for run in report["runs"])
    assert any("float32" in c for c in cases) and any("float64" in c for c in cases) and len(cases) == 8


def test_a_planted_conv2d_bug_fails_and_the_report_names_conv2d(capsys, tmp_path, small_cnn):
    path = tmp_path / "report.json"
    with registered("numpy-planted", conv.Conv2dWeightGradReversed):
        code, out, err = run_cli(capsys, "--model", "cnn", "--provider", "numpy-planted", "--dtype", "float64",
                                 "--seed", "3", "--json", str(path))
    assert code == 1
    assert "cnn[numpy-planted] on torch's initialisation, pixels in [0, 1) float64" in out
    assert "localised to conv2d (node 0 of cnn): vjp_matches_oracle" in " ".join(out.split())
    assert "reproduce: backprop-harness check --model cnn --provider numpy-planted --dtype float64 --seed 3" in " ".join(out.split())
    runs = json.loads(path.read_text())["runs"]
    assert not json.loads(path.read_text())["ok"]
    assert {run["impl"] for run in runs if run["verdict"] == "FAIL"} == {"cnn[numpy-planted]",
                                                                        "conv2d (node 0 of cnn) [numpy-planted]"}


def test_model_arguments_are_checked(capsys):
    code, _, err = run_cli(capsys, "--model", "resnet")
    assert code == 2 and err.strip() == "backprop-harness: error: --model 'resnet': expected one of cnn"
    code, _, err = run_cli(capsys, "--model", "cnn", "--sizes", "4,3")
    assert code == 2 and "--sizes does not apply to --model" in err
    code, _, err = run_cli(capsys, "--model", "cnn", "--provider", "nope")
    assert code == 2 and "--provider 'nope': no operator provider of that name" in err
