"""What an implementation in another process can come to: gone (with its verdict),
an error in its own words, or a program named by an entry point."""

import pytest

from harness.core.out_of_process import ImplementationGone, RemoteError, WorkerCommand
from harness.core.protocol import ImplementationError
from harness.core.results import Verdict


def test_a_gone_implementation_carries_its_verdict_and_message():
    gone = ImplementationGone(Verdict.TIMEOUT, "no answer to step within 3 s")
    assert gone.verdict is Verdict.TIMEOUT and str(gone) == "no answer to step within 3 s"
    assert isinstance(RemoteError("step raised ValueError: x"), Exception)


def test_a_worker_command_is_a_list_of_strings_and_cannot_be_prepared_here():
    command = WorkerCommand(["/usr/bin/mlp", "--worker"], name="mlp")
    assert command.argv == ["/usr/bin/mlp", "--worker"] and command.name == "mlp"
    with pytest.raises(ImplementationError, match="is a worker program"):
        command.prepare(None, [])
    for bad in ("mlp --worker", [], ["mlp", 3]):
        with pytest.raises(ImplementationError, match="expected a non-empty list of strings"):
            WorkerCommand(bad)
