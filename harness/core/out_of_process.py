"""Implementations that run in another process (a worker, ``harness.workers``): the
ways such a process fails that the checks report, and ``WorkerCommand``, the entry
point's value that names a worker program.

The checks and the training loop see these and nothing of the process: a worker's
death or silence is ``ImplementationGone`` (CRASHED or TIMEOUT), an error it reports
is ``RemoteError`` (ERROR, in the worker's own words).
"""

from __future__ import annotations

from harness.core.protocol import Implementation, ImplementationError
from harness.core.results import Verdict


class ImplementationGone(Exception):
    """The process running the implementation died (``Verdict.CRASHED``), stopped
    answering (``Verdict.TIMEOUT``) or could not be started (``Verdict.ERROR``): no
    answer will come, so the checks that remain for this case are not run."""

    def __init__(self, verdict: Verdict, message: str):
        super().__init__(message)
        self.verdict = verdict


class RemoteError(Exception):
    """The implementation failed in another process, which said what and where: the
    message is the whole summary (an ERROR verdict)."""


class WorkerCommand(Implementation):
    """An implementation that is a program speaking the worker protocol
    (``docs/worker-protocol.md``) on its stdin and stdout, in any language.

    Make one the value of an entry point (``module:attr``) to register a program:
    ``WorkerCommand(["/path/to/mlp-c", "--worker"])``. Its capabilities come from
    the program's answer to ``start``; it cannot be prepared in the harness's own
    process."""

    def __init__(self, argv, name: str = ""):
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ImplementationError(f"WorkerCommand({argv!r}): expected a non-empty list of strings (the program and its arguments)")
        self.argv = list(argv)
        self.name = name

    def prepare(self, spec, params, *, dtype="float64", device=None, input_grad=False):
        raise ImplementationError(f"{self.name or self.argv[0]} is a worker program: run it through harness.workers")
