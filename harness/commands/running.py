"""Where the subcommands run implementations: each in a worker process (the default),
or, with ``--in-process``, in the harness's own process.

With workers the harness never imports a plug-in: a registered name or
``module:attr`` is handed to ``python -m harness.workers.python_worker``, and
``cmd:PROGRAM ARGS`` runs any program that speaks the worker protocol. Loading
happens in the worker, under the time limit, so a plug-in that exits or hangs at
import is that implementation's CRASHED or TIMEOUT, and the run goes on.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

from harness.commands.errors import UsageError
from harness.core.out_of_process import WorkerCommand
from harness.core.protocol import ImplementationError

COMMAND_PREFIX = "cmd:"


@dataclass
class Placement:
    """How a subcommand runs implementations, from its options."""

    in_process: bool = False
    timeout: float | None = None
    jobs: int = 1
    everything: bool = False  # in process, every registered implementation, available or not (list)


def placement(args, *, jobs: bool = False) -> Placement:
    from harness.workers.pool import default_jobs
    from harness.workers.remote import DEFAULT_TIMEOUT

    if args.in_process and getattr(args, "isolate", False):
        raise UsageError("--in-process and --isolate contradict each other (workers are the default; --isolate may go)")
    if args.in_process and args.timeout:
        raise UsageError("--timeout needs workers, not --in-process (a hang can only be cut short in another process)")
    n = (getattr(args, "jobs", None) or default_jobs()) if jobs else 1
    return Placement(args.in_process, None if args.in_process else (args.timeout or DEFAULT_TIMEOUT), n)


def _command(text: str, timeout: float | None = None, **kwargs):
    from harness.workers.remote import DEFAULT_TIMEOUT, WorkerImplementation

    return WorkerImplementation.command(text[len(COMMAND_PREFIX):], timeout=timeout or DEFAULT_TIMEOUT, label=text,
                                        **kwargs)


def _check_importable(name: str) -> None:
    # Only the top-level module is looked for: finding a submodule would run its
    # package's __init__ in this process, which is what workers avoid.
    module = name.partition(":")[0]
    top = module.split(".")[0]
    try:
        found = importlib.util.find_spec(top) if top else None
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ImplementationError(f"--impl {name!r}: cannot import module {module!r}: no module named {top!r}")


def select(names, where: Placement, *, threads: int | None = None, pin: bool = False, judged: bool = True):
    """``(implementations, named)``: those ``--impl`` names, or every registered one.
    ``judged``: their steps' inputs are judged (``check``), so workers send them back."""
    if where.in_process:
        return _select_in_process(names, where)
    options = {"timeout": where.timeout, "threads": threads, "pin": pin, "return_inputs": judged}
    from harness.core.registry import declared
    from harness.workers.remote import WorkerImplementation

    registered = declared()
    if not names:
        return [WorkerImplementation.python(n, name=n, **options) for n in registered], False
    impls = []
    for name in dict.fromkeys(names):
        if name.startswith(COMMAND_PREFIX):
            impls.append(_command(name, **options))
            continue
        if name not in registered:
            if ":" not in name:
                known = ", ".join(sorted(registered)) or "none"
                raise ImplementationError(f"--impl {name!r}: no implementation of that name (registered: {known}; "
                                          f"or give module:attr, or cmd:PROGRAM)")
            _check_importable(name)
        impls.append(WorkerImplementation.python(name, name=name if name in registered else "", **options))
    return impls, True


def _select_in_process(names, where: Placement):
    from harness.core.registry import available, implementations, resolve
    from harness.workers.remote import WorkerImplementation

    def adopt(impl, label):  # a program can only run in a worker, even here
        if isinstance(impl, WorkerCommand):
            return WorkerImplementation(impl.argv, name=impl.name or label, label=label)
        return impl

    if not names:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            found = implementations() if where.everything else available()
            return [adopt(impl, name) for name, impl in found.items()], False
    return [_command(n, where.timeout) if n.startswith(COMMAND_PREFIX) else adopt(resolve(n), n)
            for n in dict.fromkeys(names)], True


def start(impls, where: Placement):
    """``(started, failures)``: the implementations whose workers started, and for each
    that did not, ``(implementation, verdict, message)``."""
    from harness.workers.pool import start_all
    from harness.workers.remote import WorkerImplementation

    remote = [impl for impl in impls if isinstance(impl, WorkerImplementation)]
    outcomes = dict(zip(map(id, remote), start_all(remote, where.jobs)))
    started, failures = [], []
    for impl in impls:
        outcome = outcomes.get(id(impl))
        if isinstance(outcome, Exception):  # a declaration the worker refused: bad input
            close(impls)
            raise outcome
        if outcome is None:
            started.append(impl)
        else:
            failures.append((impl, *outcome))
            impl.close()
    return started, failures


def close(impls) -> None:
    for impl in impls:
        stop = getattr(impl, "close", None)
        if stop is not None:
            stop()


def display_name(impl) -> str:
    return getattr(impl, "name", "") or getattr(impl, "label", "") or repr(impl)
