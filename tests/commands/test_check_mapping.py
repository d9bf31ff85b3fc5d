"""``backprop-harness check --mapping module:attr``, in-process: a table of verdicts,
exit 1 on a failure with the command that reruns it from its case file, and bad input
as one line and exit 2."""

import importlib.util
import json
import sys

import pytest

from harness.commands.main import main

MAPS = '''
import numpy as np
import harness

def tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - np.tanh(x) ** 2),)

def wrong_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - x ** 2),)  # the derivative at the input, not the output

def raising_vjp(inputs, cotangents):
    raise ValueError("\\x1b[2K\\x1b[1A\\x1b[32mevery check PASS\\x1b[0m")

tanh = harness.Mapping("tanh", np.tanh, tanh_vjp, inputs=[harness.Input((3, 4))], dtypes=("float32", "float64"))
wrong = harness.Mapping("wrong tanh", np.tanh, wrong_vjp, inputs=[harness.Input((3, 4))])
# a name and an exception that would erase the lines above and print a green PASS over them
spoof = harness.Mapping("tanh\\x1b[2K\\r\\x1b[32mPASS\\x1b[0m", np.tanh, wrong_vjp, inputs=[harness.Input((3, 4))])
spoof_raises = harness.Mapping("raises", np.tanh, raising_vjp, inputs=[harness.Input((3, 4))])
'''


@pytest.fixture
def maps(tmp_path, monkeypatch):
    (tmp_path / "climaps.py").write_text(MAPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "climaps", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_correct_mapping_passes_on_every_case_and_writes_json(maps, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "climaps:tanh", "--json", str(maps / "r.json"))
    assert code == 0, out
    data = json.loads((maps / "r.json").read_text())
    assert data["ok"] and {r["impl"] for r in data["runs"]} == {"tanh"} and len(data["runs"]) == 2 * 4  # 2 dtypes x 4 cases


def test_a_wrong_mapping_fails_with_the_command_that_reruns_its_case(maps, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "climaps:wrong", "--dtype", "float64", "--size", "200")
    assert code == 1 and "vjp_matches_oracle FAIL" in out
    repro = next(line.split("reproduce: ")[1] for line in out.splitlines() if "reproduce: " in line)
    assert repro.startswith("backprop-harness check --mapping climaps:wrong --seed 0 --case-file ")
    code, out, _ = run(capsys, *repro.split()[1:])
    assert code == 1 and "vjp_matches_oracle FAIL" in out and "from " in out  # the case file's case


@pytest.mark.parametrize("attr, verdict", [("spoof", "FAIL"), ("spoof_raises", "ERROR")])
def test_control_characters_in_a_name_or_an_error_are_shown_as_escapes_not_sent_to_the_terminal(maps, capsys, attr, verdict):
    code, out, err = run(capsys, "check", "--mapping", f"climaps:{attr}", "--dtype", "float64", "--json",
                         str(maps / "r.json"))
    assert code == 1 and f"vjp_matches_oracle {verdict}" in out, out
    assert "\x1b" not in out + err and "\r" not in out + err  # (not a terminal: rich itself writes no escapes)
    assert "\\x1b[32m" in out  # the words are still there, as escapes
    data = json.loads((maps / "r.json").read_text())
    assert not data["ok"] and "\\u001b" not in (maps / "r.json").read_text() and "\\x1b[32m" in json.dumps(data)


@pytest.mark.parametrize("argv, words", [
    (["--mapping", "climaps:tanh", "--impl", "numpy"], "--impl applies to MLP implementations, not to --mapping"),
    (["--mapping", "climaps:nothing"], "has no attribute 'nothing'"),
    (["--mapping", "climaps:tanh", "--size", "0"], "0 is not >= 1"),
    (["--second-order"], "--second-order applies to --mapping only"),
    (["--mapping", "climaps:tanh", "--case-file", "x.npz", "--size", "5"], "give one or the other"),
    (["--op", "relu", "--impl", "numpy"], "--impl applies to MLP implementations, not to --op"),
    # sized before anything is drawn: it grew to all the machine's memory before the OOM killer ended it
    (["--mapping", "climaps:tanh", "--size", str(10**14)], f"--size {10**14}: needs about"),
])
def test_bad_arguments_are_one_line_and_exit_2(maps, capsys, argv, words):
    code, out, err = run(capsys, "check", *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_a_dtype_the_mapping_does_not_declare_fails_when_asked_for(maps, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "climaps:wrong", "--dtype", "float32")
    assert code == 1 and "dtype float32 not declared" in out


def test_check_op_checks_every_provider_and_catches_a_plugin_s_wrong_backward(capsys, monkeypatch, tmp_path):
    from tests.ops import plugins

    monkeypatch.setenv("COLUMNS", "250")
    plugins.install(tmp_path, monkeypatch, "wrong-relu", plugins.WRONG_RELU)
    code, out, _ = run(capsys, "check", "--op", "relu", "--dtype", "float64")
    assert code == 1
    rows = [line for line in out.splitlines() if line.startswith("│ relu[")]
    verdicts = {(line.split("│")[1].strip(), line.split("│")[3].strip()) for line in rows}
    # torch's relu passes where torch is installed and is a SKIP saying so where it is not (the core envs)
    torch_verdict = "PASS" if importlib.util.find_spec("torch") else "SKIP"
    assert {p: v for p, v in verdicts if p != "relu[wrong-relu]"} == {
        "relu[numpy]": "PASS", "relu[pure-python]": "PASS", "relu[torch]": torch_verdict}
    assert ("relu[wrong-relu]", "FAIL") in verdicts and "vjp_matches_oracle FAIL" in out
    repro = next(line.split("reproduce: ")[1] for line in out.splitlines() if "reproduce: " in line)
    assert repro.startswith("backprop-harness check --mapping harness.ops:relu@wrong-relu --seed 0 --case-file ")
    code, out, _ = run(capsys, *repro.split()[1:])
    assert code == 1 and "vjp_matches_oracle FAIL" in out


@pytest.mark.parametrize("argv, words", [
    (["--op", "conv3d"], "operator 'conv3d' is not known; expected one of: linear"),
    (["--op", "conv2d", "--provider", "pure-python"], "--provider pure-python: it does not offer operator 'conv2d'"),
    (["--op", "relu", "--provider", "cupy"], "provider 'cupy' is not known"),
    (["--provider", "numpy"], "--provider chooses who computes an --op; give --op NAME"),
])
def test_bad_op_arguments_are_one_line_and_exit_2(capsys, argv, words):
    code, out, err = run(capsys, "check", *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
