"""Containing plug-in code that runs in the harness's own process: what it raises and
what it changes.

Whatever a plug-in raises -- any ``BaseException``: ``SystemExit`` from a stray
``sys.exit``, ``GeneratorExit``, ``MemoryError``, ``KeyboardInterrupt`` -- is that
implementation's error, and the run goes on. The one exception the harness lets
through is the user's own Ctrl-C: a ``KeyboardInterrupt`` counts as the user's only
when a SIGINT was actually received while ``watching_interrupts`` was active (the
command line watches for the whole run; ``run_check``, ``train`` and ``bench`` watch
for themselves when called from Python).

A plug-in may also change global state the harness relies on: NumPy's floating-point
error handling (``np.seterr(all="raise")`` would make the oracle raise), warning
filters (``"error"`` would turn the harness's own warnings into exceptions),
environment variables, the working directory (relative output paths), ``sys.path``
(later imports), the standard streams, the recursion limit and the SIGINT handler.
``restoring_global_state`` puts all of them back after each call. What no in-process guard can stop (``os._exit``, a segfault, a hang)
needs a child process: ``check --isolate``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
import warnings

import numpy as np

# How much of a plug-in's exception message a report keeps: a message can be huge
# (an array printed whole, a flood) and a report line must stay a line.
MESSAGE_LIMIT = 300

_sigint_received = False
_watching = 0


def user_interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's Ctrl-C (let it through) rather than something a
    plug-in raised (its error)."""
    # a real Ctrl-C raises in the main thread only
    return isinstance(exc, KeyboardInterrupt) and _sigint_received and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def watching_interrupts():
    """Record every SIGINT received inside, so ``user_interrupted`` can tell the user's
    Ctrl-C from a plug-in's ``raise KeyboardInterrupt``. Nested uses share the outer
    one; outside the main thread (where no handler can be set) it does nothing."""
    global _watching, _sigint_received
    if _watching or threading.current_thread() is not threading.main_thread():
        _watching += 1
        try:
            yield
        finally:
            _watching -= 1
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, signal.SIG_DFL, None):
        # Ctrl-C is ignored, kills the process, or is handled outside Python: no
        # KeyboardInterrupt can be the user's, so every one is a plug-in's
        _sigint_received = False
        yield
        return

    def record(signum, frame):
        global _sigint_received
        _sigint_received = True
        if callable(previous) and previous is not signal.default_int_handler:
            return previous(signum, frame)
        raise KeyboardInterrupt

    _sigint_received = False
    _watching += 1
    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        _watching -= 1
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def restoring_global_state():
    """Put back, after the body, the global state a plug-in might change: NumPy's
    error handling, warning filters, ``os.environ``, the working directory,
    ``sys.path``, ``sys.stdout`` and ``sys.stderr``, the recursion limit and the SIGINT
    handler (so the user's Ctrl-C still stops the run)."""
    numpy_errors = np.geterr()
    environment = _environment()
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed under us: nothing to return to
        cwd = None
    path = list(sys.path)
    streams = sys.stdout, sys.stderr
    recursion = sys.getrecursionlimit()
    main_thread = threading.current_thread() is threading.main_thread()
    sigint = _getsignal(signal.SIGINT) if main_thread else None
    with warnings.catch_warnings():
        try:
            yield
        finally:
            np.seterr(**numpy_errors)
            if _environment() != environment:
                os.environ.clear()
                os.environ.update({os.fsdecode(k): os.fsdecode(v) for k, v in environment.items()})
            if cwd is not None:
                with contextlib.suppress(OSError):
                    if os.getcwd() != cwd:
                        os.chdir(cwd)
            if sys.path != path:
                sys.path[:] = path
            sys.stdout, sys.stderr = streams
            sys.setrecursionlimit(recursion)
            if main_thread and sigint is not None and _getsignal(signal.SIGINT) is not sigint:
                signal.signal(signal.SIGINT, sigint)


try:  # signal.getsignal wraps its answer in an enum (~10 us, around every call); the C function does not
    from _signal import getsignal as _getsignal
except ImportError:  # pragma: no cover - not CPython
    _getsignal = signal.getsignal


def _environment() -> dict:
    # os.environ's encoded store copies in ~0.2 us where decoding every entry takes ~35 us
    # (this runs around every call into a plug-in); a plain dict where there is none
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}


def summarise(exc: BaseException, phase: str) -> str:
    """One line for what a plug-in raised: the phase, the exception's type and message
    (cut to ``MESSAGE_LIMIT`` characters) and where it was raised."""
    try:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    except BaseException:  # noqa: BLE001 - a frame that cannot even be read
        where = ""
    return f"{phase} raised {described(exc)}{where}"


def described(exc: BaseException) -> str:
    """``Type: message`` (``message_of``), or just ``Type`` for an exception without one."""
    message = message_of(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def message_of(exc: BaseException) -> str:
    """``str(exc)`` on one line, cut to ``MESSAGE_LIMIT`` characters; a message that
    cannot be made (its ``__str__`` raises) says so."""
    try:
        text = str(exc)
    except BaseException as inner:  # noqa: BLE001
        if user_interrupted(inner):
            raise
        return f"<the message could not be read: {type(inner).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else f"{text[:MESSAGE_LIMIT]}... ({len(text):,} characters)"
