"""``backprop-harness check``, in-process through main(argv): one case or the battery,
reports and JSON, a failure's repro that reproduces it, case files, isolated runs, and
bad input as one line and exit 2."""

import json
import shlex

import numpy as np
import pytest

from harness.commands.main import main
from harness.core.case_files import load_case, save_case
from harness.core.cases import make_case
from harness.core.spec import NetworkSpec
from tests import hostile_impls


@pytest.fixture(autouse=True)
def _wide_tables(monkeypatch):
    # rich folds table cells to the terminal width; xdist workers report 80 columns
    monkeypatch.setenv("COLUMNS", "250")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
    code, out2, _ = _run(capsys, *shlex.split(repro)[1:])  # the printed command reproduces the failure
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
        (["check", "--impl", "numpy", "--timeout", "5", "--in-process"], "--timeout needs workers, not --in-process"),
        (["check", "--impl", "numpy", "--isolate", "--in-process"], "--in-process and --isolate contradict each other"),
        (["check", "--timeout", "0"], "--timeout: 0.0 is not a finite number > 0"),
        (["check", "--impl", "numpy", "-j", "0"], "--jobs: 0 is not >= 1"),
        (["check", "--impl", "cmd:"], "cmd: needs a program"),
        (["check", "--case-file", "c.npz", "--sizes", "4,3,2"], "--case-file replaces --sizes/--activations/--loss/--batch/--kinks"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("backprop-harness: error:"), err
    assert words in err
    assert "Traceback" not in err + out


def test_check_isolate_reports_each_and_goes_on(capsys):
    argv = ["check", "--sizes", "4,3,2", "--batch", "3", "--isolate", "--timeout", "5"]
    for attr in ("raises", "hangs_ignoring_sigterm", "exits_0_in_step", "segfaults"):
        argv += ["--impl", f"{hostile_impls.__name__}:{attr}"]
    argv += ["--impl", "numpy"]
    assert main(argv) == 1
    out = " ".join(capsys.readouterr().out.split())
    for verdict in ("ERROR", "TIMEOUT", "CRASHED"):
        assert f"{verdict}:" in out or f" {verdict} " in out
    assert "1 of 5 implementation/case runs passed, 4 failed" in out  # numpy ran after them and passed


def test_a_case_files_own_dtype_cannot_be_overridden(capsys, tmp_path):
    path = tmp_path / "case.npz"
    save_case(make_case(NetworkSpec((4, 3, 2), ("tanh", "identity")), 3, "float32"), path)
    code, _, err = _run(capsys, "check", "--impl", "numpy", "--case-file", str(path), "--dtype", "float64")
    assert code == 2
    assert "--dtype float64: the case file's arrays are float32; a case file runs in its own dtype" in err


def test_dtype_narrows_the_battery_and_a_dtype_nobody_declares_runs_nothing_and_fails(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = _run(capsys, "check", "--impl", "pure-python", "--dtype", "float64", "--json", str(report))
    assert code == 0, out
    cases = [run["case"] for run in json.loads(report.read_text())["runs"]]
    assert len(cases) == 10 and all("float64" in c for c in cases)
    code, out, err = _run(capsys, "check", "--impl", "pure-python", "--dtype", "float32", "--json", str(report))
    assert code == 1  # nothing ran: not a pass
    assert err == "backprop-harness: nothing judged for pure-python (left out: dtype float32 not declared (it declares float64))\n"
    data = json.loads(report.read_text())
    assert [run["verdict"] for run in data["runs"]] == ["SKIP"]
    assert data["ok"] is False and data["reason"] == err.split(": ", 1)[1].strip()


def test_a_named_implementation_that_cannot_run_fails_the_check(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, _ = _run(capsys, "check", "--impl", "tests.conformance_impls:Unavailable", "--sizes", "4,3,2",
                        "--json", str(report))
    assert code == 1
    run = json.loads(report.read_text())["runs"][0]
    assert run["verdict"] == "FAIL" and run["results"][0]["check"] == "available"
    assert "named explicitly but unavailable: needs hardware this machine lacks" in run["results"][0]["message"]


def test_capabilities_that_exclude_every_case_judge_nothing_and_exit_1_with_the_reason(capsys):
    code, out, err = _run(capsys, "check", "--impl", "tests.conformance_impls:bias_gradient_summed", "--sizes", "4,3,2",
                          "--activations", "tanh,identity")
    assert code == 1
    assert err == ("backprop-harness: nothing judged for tests.conformance_impls:bias_gradient_summed "
                   "(activation tanh not supported)\n")


@pytest.mark.parametrize("dtype, scale", [("float32", "1e6"), ("float64", "1e15"), ("float64", "1e308")])
def test_huge_logits_never_pass_a_zero_layer_and_never_exit_0(capsys, tmp_path, dtype, scale):
    report = tmp_path / "report.json"
    code, out, _ = _run(capsys, "check", "--impl", "tests.checks.test_values:Layer0Zero", "--sizes", "6,5,3", "--batch", "6",
                        "--seed", "1", "--dtype", dtype, "--logit-scale", scale, "--json", str(report))
    assert code == 1
    verdicts = {r["check"]: r["verdict"] for r in json.loads(report.read_text())["runs"][0]["results"]}
    assert verdicts["gradients_match_reference"] in ("FAIL", "INCONCLUSIVE")


def test_strict_determinism_is_asked_for_on_the_command_line(capsys):
    argv = ["check", "--impl", "tests.corpus:SummationOrderVaries", "--sizes", "6,5,3", "--batch", "16", "--seed", "1"]
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    assert "deterministic PASS with a note: tests.corpus:SummationOrderVaries on 6-5-3" in out
    assert "two identical calls differ within rounding" in " ".join(out.split())
    code, out, _ = _run(capsys, *argv, "--strict-determinism")
    assert code == 1 and "deterministic FAIL" in out and "(bitwise equality demanded)" in out


def test_json_is_strict_nan_and_infinity_become_null(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, _, _ = _run(capsys, "check", "--impl", "tests.fault_impls:grads_are_nan", "--sizes", "4,3,2", "--batch", "3",
                      "--json", str(report))
    assert code == 1

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    data = json.loads(report.read_text(), parse_constant=refuse)
    worst = [c for r in data["runs"][0]["results"] for t in r["tensors"] for c in t["worst"]]
    assert any(c["got"] is None for c in worst)  # a NaN answer, written as null


def test_a_reproduce_line_is_shell_quoted(capsys, tmp_path):
    folder = tmp_path / "my cases; rm -rf ~"
    folder.mkdir()
    path = folder / "case one.npz"
    save_case(make_case(NetworkSpec((4, 3, 2), ("relu", "identity")), 3, seed=2), path)
    code, out, _ = _run(capsys, "check", "--impl", "tests.corpus:SignFlipped", "--case-file", str(path))
    assert code == 1
    repro = next(line.split("reproduce: ", 1)[1] for line in out.splitlines() if "reproduce: " in line)
    assert shlex.split(repro)[-2:] == ["--case-file", str(path)]
    code, out2, _ = _run(capsys, *shlex.split(repro)[1:])
    assert code == 1 and "gradients_match_reference FAIL" in out2


def test_files_the_harness_wrote_are_replaced_and_are_written_whole(capsys, tmp_path):
    report, case = tmp_path / "report.json", tmp_path / "case.npz"
    argv = ["check", "--impl", "numpy", "--sizes", "4,3,2", "--batch", "3", "--json", str(report), "--save-case", str(case)]
    assert _run(capsys, *argv)[0] == 0
    first = case.read_bytes()
    assert _run(capsys, *argv)[0] == 0  # its own files: replaced without a word
    assert case.read_bytes() == first and json.loads(report.read_text())["ok"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.npz", "report.json"]  # no partial files left


def test_a_device_an_implementation_does_not_declare_leaves_it_out_when_it_was_only_discovered(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = _run(capsys, "check", "--sizes", "4,3,2", "--batch", "3", "--device", "tpu", "--json", str(report))
    assert code == 1  # nothing could run there: nothing was judged
    notes = {run["impl"]: run["note"] for run in json.loads(report.read_text())["runs"]}
    assert "device 'tpu' is not among the devices it declares (cpu)" in notes["numpy"]
    assert err.startswith("backprop-harness: nothing judged for ")


def test_lanes_of_an_implementation_that_compiles_wait_for_its_one_case_warm_up_only():
    from types import SimpleNamespace

    from harness.commands.check import _lanes
    from harness.core.cases import make_case
    from harness.core.spec import NetworkSpec

    spec = NetworkSpec.parse("6,5,3", "relu,identity", "mse")
    compiled, plain = (SimpleNamespace(capabilities=SimpleNamespace(compiles_per_shape=c)) for c in (True, False))
    numbered = [(i, SimpleNamespace(impl=impl, case=make_case(spec, 4, dtype, seed)))
                for i, (impl, dtype, seed) in enumerate([(compiled, d, s) for d in ("float64", "float32") for s in (0, 1)]
                                                        + [(plain, "float64", 0), (plain, "float32", 0)])]
    lanes, after = _lanes(numbered)
    assert sorted(index for lane in lanes for index, _ in lane) == list(range(6))  # every run once
    warm = next(n for n, lane in enumerate(lanes) if lane[0][1].impl is compiled)
    assert len(lanes[warm]) == 1 and after[warm] is None
    for n, lane in enumerate(lanes):
        waits = lane[0][1].impl is compiled and n != warm
        assert after[n] == (warm if waits else None), (n, after)
    assert sum(lane[0][1].impl is plain for lane in lanes) == 1  # one lane (one worker) for what does not compile
