"""``backprop-harness grade DIR``: a classroom of submissions -- correct ones in every
form, a wrong gradient, and ones that crash, hang, flood their output and exhaust
their memory -- each costs only its own row; the gradebook's CSV, JSON and HTML (seen
in headless Chromium, every submission's string escaped); the reproduce line of a
failure reproduces it; bad folders are one line and exit 2."""

import csv
import hashlib
import json
import os
import shlex
import subprocess
import sys

import pytest

from harness.commands.main import main
from tests.benchmarks import dashboard_support
from tests.grading.classroom import HTML_NAME, QUICK, ROOT, grade, make_classroom

# tox's py311-dask env grades the classroom on a Dask LocalCluster (2 worker processes)
SCHEDULER = ("--scheduler", os.environ["BACKPROP_TEST_SCHEDULER"]) if os.environ.get("BACKPROP_TEST_SCHEDULER") else ()
if SCHEDULER:
    pytest.importorskip("distributed", reason="BACKPROP_TEST_SCHEDULER asks for Dask (pip install '.[dask]')")


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    work = tmp_path_factory.mktemp("grade")
    room = work / "room"
    expected = make_classroom(room)
    before = _digest(room)
    done = grade(room, work / "gradebook", "-j", "2", *QUICK, *SCHEDULER)
    return work, room, expected, before, done


def test_each_submission_costs_only_its_own_row(graded):
    _, _, expected, _, done = graded
    assert done.returncode == 1, done.stderr  # some failed: the gradebook is written, the exit status says so
    assert "4 of 10 submissions passed every check" in done.stderr
    book = json.loads((graded[0] / "gradebook" / "gradebook.json").read_text())
    rows = {r["submission"]: r for r in book["submissions"]}
    assert set(rows) == set(expected)
    for name, (verdict, words) in expected.items():
        row = rows[name]
        assert row["verdict"] == verdict, (name, row["first_failure"])
        if verdict == "PASS":
            assert row["ok"] and row["first_failure"] is None and row["passed"] == row["judged"] > 0
        else:
            assert not row["ok"] and words in row["first_failure"]["message"], (name, row["first_failure"])
    # the wrong gradient is caught where it is wrong, with a hint, and its per-check verdicts say which
    wrong = rows["wrong_gradient"]
    assert wrong["checks"]["gradients_match_reference"] == "FAIL"
    assert wrong["checks"]["outputs_are_finite"] == "PASS"
    assert "layer 0 W" in wrong["first_failure"]["message"] and wrong["first_failure"]["hint"]
    assert rows["hogs_memory"]["checks"]["outputs_are_finite"] == "ERROR"


def test_the_folder_of_submissions_is_left_as_it_was(graded):
    _, room, _, before, _ = graded
    assert _digest(room) == before


def test_a_failures_reproduce_line_reproduces_it(graded):
    work, room, _, _, _ = graded
    book = json.loads((work / "gradebook" / "gradebook.json").read_text())
    repro = next(r for r in book["submissions"] if r["submission"] == "wrong_gradient")["first_failure"]["repro"]
    where, _, command = repro.partition(" && ")
    assert shlex.split(where) == ["cd", str(room)]
    argv = shlex.split(command)
    assert argv[:4] == ["backprop-harness", "check", "--impl", "wrong_gradient:backprop"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "250"}
    again = subprocess.run([sys.executable, "-m", "harness", *argv[1:]], cwd=room, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 1 and "gradients_match_reference FAIL" in again.stdout, again.stdout[-2000:]


def test_csv_has_a_row_per_submission_and_a_column_per_check(graded):
    work, _, expected, _, _ = graded
    with open(work / "gradebook" / "gradebook.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["submission"] for r in rows} == set(expected)
    wrong = next(r for r in rows if r["submission"] == "wrong_gradient")
    assert wrong["verdict"] == "FAIL" and wrong["gradients_match_reference"] == "FAIL"
    assert wrong["first_failure_check"] == "gradients_match_reference" and wrong["repro"].startswith("cd ")


def test_html_escapes_every_submission_string_and_renders_in_chromium(graded):
    work, _, expected, _, _ = graded
    page = work / "gradebook" / "gradebook.html"
    text = page.read_text()
    assert HTML_NAME not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "http://" not in text and "https://" not in text and "<script" not in text  # nothing loaded from anywhere
    if dashboard_support.chromium() is None:
        if os.environ.get("BACKPROP_REQUIRE_DASHBOARD"):
            pytest.fail("BACKPROP_REQUIRE_DASHBOARD is set but chromium is not on PATH")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    dom = dashboard_support.render(page.as_uri(), "gradebook.png")
    assert dom.count("<tr data-submission=") == len(expected)
    assert "<img" not in dom  # the name is text in its cell, not an element
    assert 'class="verdict v-CRASHED">CRASHED<' in dom and 'class="verdict v-TIMEOUT">TIMEOUT<' in dom
    assert "4 of 10 submissions passed every check" in dom


def test_a_second_run_replaces_its_own_gradebook_but_not_a_strangers(graded, tmp_path, capsys):
    work, room, _, _, _ = graded
    (tmp_path / "gradebook.csv").write_text("grades I typed by hand\n")
    code = main(["grade", str(room / "as_package"), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "gradebook.csv exists and was not written by backprop-harness" in err
    assert (tmp_path / "gradebook.csv").read_text() == "grades I typed by hand\n"


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "file.py").write_text("x") and p / "file.py", "is not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no submissions in it"),
])
def test_bad_folders_are_one_line_and_exit_2(tmp_path, capsys, make, words):
    code = main(["grade", str(make(tmp_path)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "out").exists()


def test_scheduler_without_dask_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "room").mkdir()
    (tmp_path / "room" / "a.py").write_text("def backprop(spec, params, x, y):\n    return 0.0, []\n")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    code = main(["grade", str(tmp_path / "room"), "--out", str(tmp_path / "out"), "--scheduler", "local"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install 'backprop-harness[dask]'" in err, err


def test_a_bad_scheduler_address_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "room").mkdir()
    (tmp_path / "room" / "a.py").write_text("")
    code = main(["grade", str(tmp_path / "room"), "--out", str(tmp_path / "out"), "--scheduler", "my-cluster"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "expected a Dask scheduler address such as tcp://HOST:8786" in err


_RIGHT = "from harness.core import reference\ndef backprop(spec, params, x, y):\n    return reference.loss_and_grads(spec, params, x, y)\n"
_DOUBLED = ("from harness.core import reference\ndef backprop(spec, params, x, y):\n"
            "    loss, grads = reference.loss_and_grads(spec, params, x, y)\n    return loss, [(W * 2, b) for W, b in grads]\n")


def test_two_submissions_of_one_name_are_neither_graded_as_the_other(tmp_path):
    """alice.py (right) and alice/ (dW doubled) are both "alice": before, the one graded
    last gave its result to both rows (both PASS, exit 0); now both are ERROR rows saying
    why, and the folder's other submission is graded as usual."""
    room = tmp_path / "room"
    (room / "alice").mkdir(parents=True)
    (room / "alice.py").write_text(_RIGHT)
    (room / "alice" / "__init__.py").write_text(_DOUBLED)
    (room / "bob.py").write_text(_DOUBLED)
    done = grade(room, tmp_path / "book", *QUICK)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = json.loads((tmp_path / "book" / "gradebook.json").read_text())["submissions"]
    alices = [r for r in rows if r["submission"] == "alice"]
    assert len(alices) == 2 and all(not r["ok"] and r["verdict"] == "ERROR" for r in alices), alices
    assert all("2 submissions are named 'alice' (alice, alice.py): rename all but one" in r["first_failure"]["message"]
               for r in alices)
    bob = next(r for r in rows if r["submission"] == "bob")
    assert bob["verdict"] == "FAIL" and bob["checks"]["gradients_match_reference"] == "FAIL"


def test_a_gradebook_inside_the_folder_of_submissions_is_refused_before_anything_is_written(tmp_path, capsys):
    room = tmp_path / "room"
    (room / "bob").mkdir(parents=True)
    (room / "bob" / "__init__.py").write_text(_RIGHT)
    before = _digest(room)
    for out in (room, room / "bob", room / "new"):
        code = main(["grade", str(room), "--out", str(out), *QUICK])
        err = capsys.readouterr().err
        assert code == 2 and f"--out {out}: inside the folder of submissions {room}" in err and "Traceback" not in err
        assert _digest(room) == before


def test_a_submissions_name_and_error_reach_the_terminal_as_written_not_as_escapes_or_markup(tmp_path):
    """A submission named like rich markup, whose backward raises with terminal escapes
    that would erase its row and print a green PASS: the table shows both as text (the
    markup's brackets, the escapes as \\x1b), and sends no escape to the terminal."""
    room = tmp_path / "room"
    room.mkdir()
    (room / "mal[green]lory.py").write_text(
        "def backprop(spec, params, x, y):\n"
        "    raise ValueError('\\x1b[2K\\r\\x1b[32mPASS [bold green]all checks passed[/]')\n")
    done = grade(room, tmp_path / "book", *QUICK)
    shown = done.stdout + done.stderr
    assert done.returncode == 1, shown
    assert "\x1b" not in shown and "\r" not in shown  # (not a terminal: rich itself writes no escapes)
    assert "mal[green]lory" in shown and "\\x1b[32mPASS [bold green]all checks" in shown, shown
    rows = json.loads((tmp_path / "book" / "gradebook.json").read_text())["submissions"]
    assert [r["verdict"] for r in rows] == ["ERROR"]
