"""The ``backprop-harness`` command. Each subcommand (``list``, ``check``, ``bench``,
``train``) lives in its own module, declares its arguments and calls a plain
function; a user error becomes one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import os
import sys

from harness.commands import bench, check, listing, train
from harness.commands.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from harness.core.protocol import ImplementationError

SUBCOMMANDS = (listing, check, bench, train)


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
    # `--impl module:attr` should find modules in the current directory, as
    # `python -m harness` would, also when run through the console script.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except (UsageError, ImplementationError, ValueError, FileNotFoundError) as exc:
        print(f"backprop-harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("backprop-harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
