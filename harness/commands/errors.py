"""Exit codes of ``backprop-harness``, and the error that means "the user's input is bad"."""

EXIT_OK = 0  # everything asked for ran and passed
EXIT_FAILED = 1  # something was judged wrong, or could not run
EXIT_USAGE = 2  # bad input: one line on stderr names it
EXIT_INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit 2."""
