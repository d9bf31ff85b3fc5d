import json

import pytest

from harness.commands.main import main
from harness.networks import cnn as cnn_module
from harness.ops.registry import ENTRY_POINT_GROUP
from tests.entry_points import install
from tests.networks.providers import PLUGIN_PROVIDERS, PLUGIN_SOURCE, registered
from tests.operator_corpus import convolution as conv


@pytest.fixture
def plugin_providers(tmp_path, monkeypatch):
    from harness.ops import registry

    install(tmp_path, monkeypatch, PLUGIN_PROVIDERS, {"cnnbugs": PLUGIN_SOURCE}, name="cnn-bugs", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_PROVIDERS", {})  # found again, with the plug-ins, in this process too
    monkeypatch.setattr(registry, "_LOAD_FAILURES", {})


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
    with registered("numpy-planted", conv.Conv2dWeightGradReversed):  # registered here: checked here
        code, out, err = run_cli(capsys, "--model", "cnn", "--provider", "numpy-planted", "--dtype", "float64",
                                 "--seed", "3", "--json", str(path), "--in-process")
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


def test_in_workers_a_plug_in_s_conv2d_bug_is_localised_as_in_process(capsys, tmp_path, small_cnn, plugin_providers):
    """The default: each provider's network in a worker process, through the executor;
    the planted bug is found and named there, and the report is the in-process one."""
    reports = {}
    for where in ("workers", "in-process"):
        path = tmp_path / f"{where}.json"
        code, out, err = run_cli(capsys, "--model", "cnn", "--provider", "numpy-reversed", "--provider", "numpy",
                                 "--dtype", "float64", "--seed", "3", "--json", str(path),
                                 *(["--in-process"] if where == "in-process" else []))
        assert code == 1, out + err
        text = " ".join(out.split())
        assert "localised to conv2d (node 0 of cnn): vjp_matches_oracle" in text
        assert "reproduce: backprop-harness check --model cnn --provider numpy-reversed --dtype float64 --seed 3" in text
        reports[where] = json.loads(path.read_text())
    runs = reports["workers"]["runs"]
    assert {run["impl"] for run in runs if run["verdict"] == "FAIL"} == {"cnn[numpy-reversed]",
                                                                        "conv2d (node 0 of cnn) [numpy-reversed]"}
    assert all(run["verdict"] == "PASS" for run in runs if run["impl"] == "cnn[numpy]")

    def verdicts(report):
        return [(run["impl"], run["case"], run["verdict"], [(r["check"], r["verdict"]) for r in run["results"]])
                for run in report["runs"]]

    assert verdicts(reports["workers"]) == verdicts(reports["in-process"])


def test_a_provider_that_exits_0_in_its_backward_is_crashed_and_the_other_passes(capsys, tmp_path, small_cnn,
                                                                                plugin_providers):
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "--model", "cnn", "--provider", "numpy-exits", "--provider", "numpy",
                             "--dtype", "float64", "--json", str(path))
    assert code == 1, out + err
    runs = json.loads(path.read_text())["runs"]
    exited = [run for run in runs if run["impl"] == "cnn[numpy-exits]"]
    assert exited and all(run["verdict"] == "CRASHED" for run in exited), exited
    assert all(run["verdict"] == "PASS" for run in runs if run["impl"] == "cnn[numpy]")
    assert len([run for run in runs if run["impl"] == "cnn[numpy]"]) == 4

