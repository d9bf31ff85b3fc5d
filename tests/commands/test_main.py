"""The dispatcher: every subcommand is reachable, called in-process through main(argv)
and as ``python -m harness``; a user error in any of them is one line and exit 2, an
interrupt exit 130."""

import os
import subprocess
import sys

import pytest

from harness.commands import main as dispatcher
from harness.commands.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from harness.commands.main import build_parser, main
from harness.core.protocol import ImplementationError


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_parser_knows_every_subcommand():
    parser = build_parser()
    for command in ("list", "check", "bench", "train"):
        assert parser.parse_args([command]).command == command


@pytest.mark.parametrize(
    "argv, words",
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: command"),
        (["check", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["check", "--impl", "no-such"], "no implementation of that name"),
        (["check", "--sizes", "784,x"], "sizes='784,x'"),
        (["check", "--case-file", "/nonexistent/case.npz"], "no such file"),
    ],
    ids=["unknown-command", "no-command", "unknown-option", "implementation-error", "value-error", "missing-file"],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = _run(capsys, *argv)
    assert code == EXIT_USAGE == 2
    assert err.count("\n") == 1 and err.startswith("backprop-harness: error:"), err
    assert words in err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    "raised, code, words",
    [
        (UsageError("--thing is bad"), EXIT_USAGE, "backprop-harness: error: --thing is bad\n"),
        (ImplementationError("no such"), EXIT_USAGE, "backprop-harness: error: no such\n"),
        (FileNotFoundError("gone.npz"), EXIT_USAGE, "backprop-harness: error: gone.npz\n"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "backprop-harness: interrupted\n"),
    ],
    ids=["usage", "implementation", "file", "interrupt"],
)
def test_what_a_subcommand_raises_becomes_an_exit_code_and_one_line(capsys, monkeypatch, raised, code, words):
    def run(args):
        raise raised

    monkeypatch.setattr(dispatcher.listing, "run", run)
    assert main(["list"]) == code
    assert capsys.readouterr().err == words


def test_any_other_exception_is_a_bug_and_is_not_swallowed(monkeypatch):
    def run(args):
        raise RuntimeError("a bug in the harness")

    monkeypatch.setattr(dispatcher.listing, "run", run)
    with pytest.raises(RuntimeError, match="a bug in the harness"):
        main(["list"])


def test_the_working_directory_is_importable_for_module_attr(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.setattr(dispatcher.listing, "run", lambda args: 0)
    main(["list"])
    assert str(tmp_path) in sys.path


def test_python_dash_m_harness_works():
    done = subprocess.run([sys.executable, "-m", "harness", "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "numpy" in done.stdout


def test_an_error_s_words_are_one_line_with_control_characters_as_escapes(capsys, tmp_path, monkeypatch):
    # a mapping module whose import fails with words that would erase the line and print over it
    (tmp_path / "spoofmod.py").write_text('raise ImportError("gone\\x1b[2K\\r\\x1b[32mall PASS\\x1b[0m\\nsecond line")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "--mapping", "spoofmod:m"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\r" not in err
    assert "gone\\x1b[2K \\x1b[32mall PASS\\x1b[0m second line" in err, err
