"""The CLI, called in-process through main(argv)."""

import json

import numpy as np
import pytest

from harness.commands.main import main
from harness.core.case_files import load_case


@pytest.fixture(autouse=True)
def _wide_tables(monkeypatch):
    # rich folds table cells to the terminal width; xdist workers report 80 columns
    monkeypatch.setenv("COLUMNS", "250")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_builtin_and_its_availability(capsys):
    code, out, _ = _run(capsys, "list")
    assert code == 0
    for name in ("pure-python", "numpy", "torch", "torch-compile"):
        assert name in out
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in out


def test_check_one_case_passes_and_shows_tensors(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = _run(capsys, "check", "--impl", "numpy", "--sizes", "6,5,3", "--activations", "tanh,identity",
                        "--batch", "4", "--dtype", "float32", "--json", str(report))
    assert code == 0, out
    assert "layer 0 W" in out and "PASS" in out
    data = json.loads(report.read_text())
    assert data["ok"] is True
    checks = {r["check"]: r for r in data["runs"][0]["results"]}
    assert checks["gradients_match_reference"]["verdict"] == "PASS"
    assert {t["name"] for t in checks["gradients_match_reference"]["tensors"]} == {"layer 0 W", "layer 0 b", "layer 1 W", "layer 1 b"}


def test_check_a_buggy_function_fails_with_a_runnable_repro(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "buggy.py").write_text(
        "from harness.core.reference import loss_and_grads\n"
        "def backprop(spec, params, x, y):\n"
        "    loss, grads = loss_and_grads(spec, params, x, y)\n"
        "    return loss, [(-dW, -db) for dW, db in grads]\n"
    )
    code, out, _ = _run(capsys, "check", "--impl", "buggy:backprop", "--sizes", "5,4,3", "--batch", "3", "--seed", "4")
    assert code == 1
    assert "gradients_match_reference FAIL" in out and "sign flipped" in out
    repro = next(line.split("reproduce: ", 1)[1] for line in out.splitlines() if "reproduce: " in line)
    assert repro.startswith("backprop-harness check --impl buggy:backprop --sizes 5,4,3")
    code, out2, _ = _run(capsys, *repro.split()[1:])  # the printed command reproduces the failure
    assert code == 1 and "gradients_match_reference FAIL" in out2


def test_save_case_then_case_file_runs_exactly_that_case(capsys, tmp_path):
    path = tmp_path / "case.npz"
    code, _, _ = _run(capsys, "check", "--impl", "numpy", "--sizes", "5,4,3", "--activations", "leaky_relu,identity",
                      "--loss", "mse", "--batch", "3", "--dtype", "float32", "--kinks", "--save-case", str(path))
    assert code == 0
    case = load_case(path)
    assert case.dtype == "float32" and case.spec.loss == "mse" and case.x.shape == (3, 5)
    before = path.read_bytes()
    code, out, _ = _run(capsys, "check", "--impl", "numpy", "--case-file", str(path))
    assert code == 0 and "float32" in out
    assert path.read_bytes() == before  # the user's file is never modified
    np.testing.assert_array_equal(load_case(path).x, case.x)


def test_default_battery_covers_everything_and_leaves_seed_size_out_for_pure_python(capsys):
    code, out, _ = _run(capsys, "check", "--impl", "pure-python")
    assert code == 0, out
    assert "left out: a step of 784-500-10" in out and "max_multiply_adds" in out
    for activation in ("relu", "leaky_relu", "sigmoid", "tanh", "identity"):
        assert activation in out
    assert "mse" in out and "cross_entropy" in out and "on kinks" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["check", "--impl", "no-such"], "no implementation of that name"),
        (["check", "--impl", "no_such_module_q:f"], "cannot import module 'no_such_module_q'"),
        (["check", "--batch", "0"], "--batch: 0 is not >= 1"),
        (["check", "--sizes", "784,x"], "sizes='784,x'"),
        (["check", "--activations", "relu,softplus", "--sizes", "4,3,2"], "unknown activation 'softplus'"),
        (["check", "--dtype", "float16"], "invalid choice: 'float16'"),
        (["check", "--case-file", "/nonexistent/case.npz"], "no such file"),
        (["check", "--save-case", "x.npz"], "--save-case needs one selected case"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("backprop-harness: error:"), err
    assert words in err
    assert "Traceback" not in err + out


def test_python_dash_m_harness_works():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness", "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "numpy" in done.stdout
