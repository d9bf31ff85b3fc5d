"""Implementations in other languages, through the worker protocol: the C worker
(compiled here with the system compiler) and the JavaScript one pass the whole
default battery in float64 and float32; the C one built wrong on purpose fails with
the usual report; and check, bench, train and the conformance suite all take them.

Without a compiler or node these tests skip, unless BACKPROP_REQUIRE_COMPILERS is
set (tox sets it, and .ci/run installs both), where they fail instead.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.commands.main import main

ROOT = Path(__file__).resolve().parents[1]
C_SOURCE = ROOT / "workers" / "c" / "mlp_worker.c"
NODE_WORKER = ROOT / "workers" / "node" / "mlp_worker.js"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("BACKPROP_REQUIRE_COMPILERS"):
            pytest.fail(f"BACKPROP_REQUIRE_COMPILERS is set but {tool} is not on PATH")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def c_workers(tmp_path_factory):
    """``(right, wrong)``: the C worker, and the same built with -DBUG_BIAS_SUM."""
    cc = need("cc")
    where = tmp_path_factory.mktemp("c-worker")
    built = []
    for name, flags in (("mlp-worker", []), ("mlp-bug", ["-DBUG_BIAS_SUM"])):
        exe = where / name
        subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Werror", *flags, "-o", str(exe), str(C_SOURCE), "-lm"], check=True)
        built.append(str(exe))
    return built


def node_worker() -> str:
    return f"cmd:{need('node')} {NODE_WORKER}"


def battery(target: str, tmp_path) -> list[dict]:
    report = tmp_path / "report.json"
    assert main(["check", "--impl", target, "--json", str(report)]) == 0
    return json.loads(report.read_text())["runs"]


def assert_whole_battery_passes(runs):
    cases = [run["case"] for run in runs]
    assert len(cases) == 20 and sum("float32" in c for c in cases) == 10  # the default battery in both dtypes
    assert any("784-500-10" in c for c in cases) and any("on kinks" in c for c in cases)
    for run in runs:
        assert run["verdict"] == "PASS", run
        checks = {r["check"]: r["verdict"] for r in run["results"]}
        assert len(checks) == 13 and set(checks.values()) == {"PASS"}  # dL/dx and inputs included: nothing skipped


def test_the_c_worker_passes_the_default_battery_in_float64_and_float32(c_workers, tmp_path):
    assert_whole_battery_passes(battery(f"cmd:{c_workers[0]}", tmp_path))


def test_the_javascript_worker_passes_the_default_battery_in_float64_and_float32(tmp_path):
    assert_whole_battery_passes(battery(node_worker(), tmp_path))


def test_a_wrong_c_worker_fails_with_the_usual_report_and_its_reproduce_line_reproduces_it(c_workers, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich would fold the report at a pytest worker's 80 columns
    assert main(["check", "--impl", f"cmd:{c_workers[1]}", "--sizes", "6,5,3", "--batch", "4"]) == 1
    out = capsys.readouterr().out
    assert "gradients_match_reference FAIL: c-mlp on 6-5-3 relu,identity cross_entropy batch=4" in out
    assert "layer 0 b: 4/5 elements outside tolerance" in out or "layer 0 b: 5/5 elements outside tolerance" in out
    assert "hint: the batch reduction is not a mean" in out
    repro = next(line.split("reproduce: ", 1)[1] for line in out.splitlines() if "reproduce:" in line)
    assert repro.startswith(f"backprop-harness check --impl cmd:{c_workers[1]} --sizes 6,5,3")
    assert main(shlex.split(repro)[1:]) == 1
    assert "gradients_match_reference FAIL" in capsys.readouterr().out


def test_bench_times_a_foreign_worker_beside_numpy(c_workers, tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert main(["bench", "--impl", "numpy", "--impl", f"cmd:{c_workers[0]}", "--sizes", "64,32,10", "--batch", "16",
                 "--dtype", "float64", "--min-time", "0.05", "--json", str(report)]) == 0
    timings = {t["implementation"]: t for t in json.loads(report.read_text())["timings"]}
    assert set(timings) == {"numpy", "c-mlp"} and all(t["median"] > 0 for t in timings.values())
    assert "c-mlp" in capsys.readouterr().out


def test_train_trains_a_foreign_worker_on_numpys_trajectory(c_workers, capsys):
    assert main(["train", "--impl", f"cmd:{c_workers[0]}", "--epochs", "2", "--hidden", "16"]) == 0
    assert "c-mlp" in capsys.readouterr().out


def test_the_conformance_suite_drives_a_foreign_worker_and_shrinks_its_failure(c_workers, tmp_path):
    def suite(target):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "harness.conformance",
                               "-k", "gradients_match_reference or batch_duplication_invariant", "--impl", target],
                              cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HYPOTHESIS_PROFILE": "ci", "BACKPROP_HARNESS_CASE_DIR": str(tmp_path)})

    right = suite(f"cmd:{c_workers[0]}")
    assert right.returncode == 0 and "2 passed" in right.stdout, right.stdout
    wrong = suite(f"cmd:{c_workers[1]}")
    assert wrong.returncode == 1 and "2 failed" in wrong.stdout, wrong.stdout
    # shrunk: the minimal failing case is one sample through one layer, saved for the reproduce line
    assert "batch=1" in wrong.stdout and "reproduce: backprop-harness check --impl" in wrong.stdout
    assert list(tmp_path.glob("*.npz"))
