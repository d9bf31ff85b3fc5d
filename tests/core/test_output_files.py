"""Output files: checked before any work, absolute, written atomically, never replacing
a file the harness did not write, and JSON without NaN or infinity literals."""

import json
import os

import numpy as np
import pytest

from harness.core.case_files import save_case
from harness.core.cases import make_case
from harness.core.output_files import (
    OutputPathError,
    check_output_path,
    generator,
    json_safe,
    save_figure,
    write_atomically,
    write_json,
    written_by_harness,
)
from harness.core.spec import NetworkSpec


def test_a_new_file_in_an_existing_folder_is_fine_and_comes_back_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output_path("report.json", option="--json", kind="json") == str(tmp_path / "report.json")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d, "is a directory; expected a file name"),
        (lambda d: d / "missing" / "r.json", "no such folder"),
        (lambda d: (d / "r.json").write_text('{"generator": "someone else"}') and d / "r.json", "was not written by backprop-harness"),
        (lambda d: os.mkfifo(d / "pipe") or d / "pipe", "exists and is not a regular file"),
    ],
    ids=["directory", "missing-folder", "someone-elses-file", "fifo"],
)
def test_paths_that_must_not_be_written_are_refused_naming_the_option(tmp_path, make, words):
    with pytest.raises(OutputPathError) as info:
        check_output_path(make(tmp_path), option="--json", kind="json")
    assert str(info.value).startswith("--json ") and words in str(info.value)


def test_a_read_only_folder_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match="is not writable"):
            check_output_path(tmp_path / "r.json", option="--json", kind="json")
    finally:
        tmp_path.chmod(0o700)


def test_a_folder_that_says_it_is_writable_but_takes_no_file_is_refused_before_the_run():
    # /sys: os.access says writable (to root), but no file can be made there; it was
    # found only after the run, when the report could not be written
    if not os.path.isdir("/sys/kernel") or not os.access("/sys", os.W_OK | os.X_OK):
        pytest.skip("needs Linux's /sys, writable by os.access's account (root)")
    with pytest.raises(OutputPathError, match="--json /sys/r.json: cannot create a file in /sys"):
        check_output_path("/sys/r.json", option="--json", kind="json")


def test_files_the_harness_wrote_are_recognised_and_no_others(tmp_path):
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    write_json(ours, {"ok": True})
    theirs.write_text(json.dumps({"ok": True, "generator": "backprop-harness"}))  # the mark, but not first: not ours
    assert written_by_harness(ours, "json") and not written_by_harness(theirs, "json")
    case, plain = tmp_path / "case.npz", tmp_path / "plain.npz"
    save_case(make_case(NetworkSpec((3, 2), ("identity",)), 2), case)
    np.savez(plain, x=np.zeros(2))
    assert written_by_harness(case, "npz") and not written_by_harness(plain, "npz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png, foreign = tmp_path / "plot.png", tmp_path / "foreign.png"
    save_figure(plt.figure(), png)
    fig = plt.figure()
    fig.savefig(foreign)
    plt.close(fig)
    assert written_by_harness(png, "png") and not written_by_harness(foreign, "png")
    assert not written_by_harness(ours, "png") and not written_by_harness(png, "npz")  # a mark of the wrong kind
    assert check_output_path(case, option="--save-case", kind="npz") == str(case)  # ours may be replaced


def test_an_atomic_write_leaves_nothing_behind_when_it_fails_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")

    def half(fh):
        fh.write("new, half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(path, half)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    write_atomically(path, lambda fh: fh.write("new"))
    assert path.read_text() == "new" and oct(path.stat().st_mode & 0o777) != "0o600"


def test_json_is_strict_and_marked():
    assert json_safe({"a": float("nan"), "b": [np.float32(1.5), np.inf, (np.int64(2), -np.inf)], 3: np.array([1.0, np.nan])}) == {
        "a": None, "b": [1.5, None, [2, None]], "3": [1.0, None]}


def test_written_json_starts_with_the_generator_and_has_no_nan(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"x": float("nan")})
    text = path.read_text()
    assert text.startswith('{\n  "generator": "backprop-harness') and "NaN" not in text
    assert json.loads(text) == {"generator": generator(), "x": None}


@pytest.mark.parametrize("option", ["--json", "--save-case"])
def test_an_output_the_file_system_refuses_after_the_run_is_one_line_and_exit_2(tmp_path, option):
    """A file size limit (RLIMIT_FSIZE, as a full disk would) makes the write fail after
    the checks ran: before, a traceback (three, chained, for --save-case) and exit 1;
    now one line naming the file and why, exit 2, and no partial file left."""
    import resource
    import subprocess
    import sys

    from tests.grading.classroom import ROOT

    def limit():  # Python ignores SIGXFSZ: the write raises EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    target = tmp_path / ("out.json" if option == "--json" else "case.npz")
    done = subprocess.run([sys.executable, "-m", "harness", "check", "--impl", "numpy", "--sizes", "30,20", "--batch", "2",
                           "--in-process", option, str(target)], preexec_fn=limit, capture_output=True, text=True,
                          cwd=str(ROOT), env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    # (no bytecode written under the limit: CPython would write .pyc files cut short and
    # every later import of them would fail with "marshal data too short")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"backprop-harness: error: cannot write {target}: File too large", done.stderr
    assert os.listdir(tmp_path) == []
