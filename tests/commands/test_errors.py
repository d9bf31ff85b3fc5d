"""Exit codes: 0 passed, 1 judged wrong, 2 bad input, 130 interrupted; and
``UsageError``, the user's mistake, reported as one line."""

import signal

from harness.commands.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from harness.commands.main import main


def test_exit_codes_are_distinct_and_follow_shell_conventions():
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)  # 2: argparse's own code for bad usage
    assert EXIT_INTERRUPTED == 128 + signal.SIGINT  # what a shell reports for Ctrl-C


def test_a_usage_error_is_an_exception_of_its_own():
    assert issubclass(UsageError, Exception) and not issubclass(UsageError, ValueError)
    assert str(UsageError("--plot: expected a .png file name")) == "--plot: expected a .png file name"


def test_each_outcome_reaches_the_shell_as_its_code(capsys, tmp_path):
    small = ["--sizes", "4,3,2", "--batch", "2"]
    assert main(["check", "--impl", "numpy", *small]) == EXIT_OK
    assert main(["check", "--impl", "tests.conformance_impls:bias_gradient_summed", *small]) == EXIT_FAILED
    assert main(["check", "--save-case", str(tmp_path / "x.npz")]) == EXIT_USAGE  # a UsageError raised by check
    err = capsys.readouterr().err
    assert err == "backprop-harness: error: --save-case needs one selected case (--sizes ... or --case-file)\n"
