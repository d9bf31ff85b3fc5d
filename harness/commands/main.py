"""The ``backprop-harness`` command. Each subcommand (``list``, ``ops``, ``check``,
``bench``, ``train``) lives in its own module, declares its arguments and calls a plain
function; a user error becomes one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import os
import sys

from harness.commands import bench, check, grade, listing, operators, train
from harness.commands.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from harness.core.containment import watching_interrupts
from harness.core.protocol import ImplementationError

SUBCOMMANDS = (listing, operators, check, bench, train, grade)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + traceback
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="backprop-harness", description="Check backprop implementations' gradients and speed.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for subcommand in SUBCOMMANDS:
        subcommand.register(sub)
    return parser


def main(argv=None) -> int:
    """Run one subcommand; returns the exit status. Bad input is one line on stderr
    and exit 2; the user's Ctrl-C exit 130 (a plug-in that raises KeyboardInterrupt
    without one is that plug-in's error: see ``harness.core.containment``)."""
    # `--impl module:attr` should find modules in the current directory, as
    # `python -m harness` would, also when run through the console script.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    try:
        with watching_interrupts():
            args = parser.parse_args(argv)
            return args.func(args)
    except (UsageError, ImplementationError, ValueError, FileNotFoundError) as exc:
        print(f"backprop-harness: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("backprop-harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("backprop-harness: out of memory (the estimate made before the run was not enough)", file=sys.stderr)
        return EXIT_FAILED


def one_line(exc: BaseException) -> str:
    """An error's message on one line (a path or a plug-in's words may hold newlines),
    its control characters written as escapes."""
    from harness.core.results import printable

    return printable(" ".join(str(exc).split()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
