"""``check --mapping`` runs each mapping in a worker: one that exits (status 0 included),
crashes, hangs or floods its output is that mapping's CRASHED, ERROR or TIMEOUT, never a
pass and never the harness's exit status, and the other mappings' results survive; the
report is the one ``--in-process`` gives."""

import json
import sys
import time

import pytest

from harness.commands.main import main

HOSTILE = '''
import os, sys, time
import numpy as np
import harness

def tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - np.tanh(x) ** 2),)

def wrong_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - x ** 2),)

def exits_0(inputs, cotangents):
    os._exit(0)

def sys_exits(inputs, cotangents):
    sys.exit(0)

def hangs(x):
    while True:
        time.sleep(1)

def floods(x):
    for _ in range(400):
        sys.stdout.write("x" * 100_000 + "\\n")  # 40 MB on the protocol's own descriptor, were it not kept apart
        os.write(1, b"y" * 100_000)
    return np.tanh(x)

SHAPE = [harness.Input((3, 4))]
tanh = harness.Mapping("tanh", np.tanh, tanh_vjp, inputs=SHAPE)
wrong = harness.Mapping("wrong tanh", np.tanh, wrong_vjp, inputs=SHAPE)
exiting = harness.Mapping("exits 0", np.tanh, exits_0, inputs=SHAPE)
sys_exiting = harness.Mapping("sys.exit", np.tanh, sys_exits, inputs=SHAPE)
hanging = harness.Mapping("hangs", hangs, tanh_vjp, inputs=SHAPE)
flooding = harness.Mapping("floods", floods, tanh_vjp, inputs=SHAPE)
'''


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    (tmp_path / "hostilemaps.py").write_text(HOSTILE)
    (tmp_path / "exits_on_import.py").write_text("import os\nos._exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verdicts(path):
    data = json.loads(path.read_text())
    return {(r["impl"], r["case"]): r["verdict"] for r in data["runs"]}, data


def report_without_seconds(capsys, folder, maps, where):
    """``(exit status, JSON report minus each result's seconds)`` of ``check`` on ``maps``."""
    code, _, _ = run(capsys, "check", *maps, "--size", "40", "--json", str(folder / "r.json"), *where)
    _, data = verdicts(folder / "r.json")
    for r in data["runs"]:
        for result in r["results"]:
            result.pop("seconds")
    return code, data


def test_a_mapping_that_exits_0_in_its_backward_is_crashed_and_the_others_still_pass(hostile, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "hostilemaps:exiting", "--mapping", "hostilemaps:tanh",
                       "--dtype", "float64", "--json", str(hostile / "r.json"))
    assert code == 1
    seen, _ = verdicts(hostile / "r.json")
    assert {v for (impl, _), v in seen.items() if impl == "exits 0"} == {"CRASHED"}
    assert {v for (impl, _), v in seen.items() if impl == "tanh"} == {"PASS"} and len(seen) == 8
    assert "the worker died during checking case 0: exit status 0" in out


def test_a_module_that_exits_0_while_imported_is_crashed_not_a_pass(hostile, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "exits_on_import:anything", "--mapping", "hostilemaps:tanh",
                       "--dtype", "float64")
    assert code == 1
    assert "load CRASHED: exits_on_import:anything" in out and "exit status 0" in out
    assert "4 of 5 implementation/case runs passed" in out


def test_sys_exit_inside_a_check_is_the_mapping_s_error(hostile, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "hostilemaps:sys_exiting", "--dtype", "float64", "--size", "12")
    assert code == 1 and "checks ERROR" in out and "SystemExit" in out


def test_a_hanging_mapping_is_a_timeout_within_the_limit(hostile, capsys):
    start = time.monotonic()
    code, out, _ = run(capsys, "check", "--mapping", "hostilemaps:hanging", "--dtype", "float64", "--size", "12",
                       "--timeout", "3")
    assert code == 1 and "TIMEOUT" in out and "no answer to checking case 0 within 3 s" in out
    assert time.monotonic() - start < 60


def test_a_mapping_that_floods_its_output_still_passes_and_the_report_is_intact(hostile, capsys):
    code, out, _ = run(capsys, "check", "--mapping", "hostilemaps:flooding", "--dtype", "float64", "--size", "12",
                       "--json", str(hostile / "r.json"))
    seen, _ = verdicts(hostile / "r.json")
    assert code == 0 and set(seen.values()) == {"PASS"}, out
    assert "xxxxxxxxxx" not in out


def test_a_module_that_cannot_be_imported_is_one_line_and_exit_2(hostile, capsys):
    (hostile / "broken_maps.py").write_text("raise RuntimeError('no such backend')\n")
    code, _, err = run(capsys, "check", "--mapping", "broken_maps:tanh")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--mapping 'broken_maps:tanh': cannot import module 'broken_maps': RuntimeError: no such backend" in err


def test_in_a_worker_and_in_process_the_report_is_the_same(hostile, capsys):
    maps = ["--mapping", "hostilemaps:wrong", "--mapping", "hostilemaps:tanh"]
    reports = [report_without_seconds(capsys, hostile, maps, where) for where in ([], ["--in-process"])]
    assert reports[0][0] == reports[1][0] == 1
    assert reports[0][1] == reports[1][1]
    assert any(v == "FAIL" for v in verdicts(hostile / "r.json")[0].values())


def test_the_harness_process_never_imports_the_mapping_s_module(hostile, capsys):
    sys.modules.pop("hostilemaps", None)
    run(capsys, "check", "--mapping", "hostilemaps:tanh", "--dtype", "float64", "--size", "12")
    assert "hostilemaps" not in sys.modules


def test_on_dask_the_mapping_report_and_exit_status_are_the_ones_of_the_local_executor(hostile, capsys):
    pytest.importorskip("distributed", reason="Dask is an optional extra (tox env py311-dask)")
    maps = ["--mapping", "hostilemaps:wrong", "--mapping", "hostilemaps:exiting", "--mapping", "hostilemaps:tanh"]
    reports = [report_without_seconds(capsys, hostile, maps, where)
               for where in (["-j", "2"], ["--scheduler", "local", "-j", "2"])]
    assert reports[0][0] == reports[1][0] == 1
    assert reports[0][1] == reports[1][1]
    seen = verdicts(hostile / "r.json")[0]
    assert {v for (impl, _), v in seen.items() if impl == "exits 0"} == {"CRASHED"}
    assert "FAIL" in {v for (impl, _), v in seen.items() if impl == "wrong tanh"}


def test_on_dask_a_model_s_report_is_the_local_one(capsys, tmp_path, monkeypatch):
    """``check --model``: each provider's network is a task like a mapping; the network
    travels as plain data, so the small one built here is what the Dask worker checks."""
    pytest.importorskip("distributed", reason="Dask is an optional extra (tox env py311-dask)")
    from harness.networks import cnn as cnn_module

    monkeypatch.setitem(cnn_module.MODELS, "cnn", lambda **sizes: cnn_module.cnn(channels=2, image=4))
    reports = []
    for where in (["-j", "2"], ["--scheduler", "local", "-j", "2"]):
        code, _, _ = run(capsys, "check", "--model", "cnn", "--provider", "numpy", "--dtype", "float64", "--json",
                         str(tmp_path / "r.json"), *where)
        runs = json.loads((tmp_path / "r.json").read_text())["runs"]
        reports.append((code, [(r["impl"], r["case"], r["verdict"], [(x["check"], x["verdict"]) for x in r["results"]])
                               for r in runs]))
    assert reports[0] == reports[1] and reports[0][0] == 0 and len(reports[0][1]) == 4
    assert all("(2x1x3x3, 2, 10x8, 10, " in case for _, case, _, _ in reports[0][1])  # the small network, there too
