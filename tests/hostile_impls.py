"""Plug-ins that misbehave the ways a careless or hostile author's would, for the
tests that prove the harness survives them (tests/test_hostile_plugins.py). Each is
the plain-function shortcut, named ``tests.hostile_impls:NAME``; the modules that
misbehave while being imported are in ``tests/hostile_imports/``.

Several also compute a wrong gradient (``half``): the misbehaviour must then neither
hide the FAIL nor cost the report.
"""

import os
import signal
import sys
import time

from harness.core import reference


def correct(spec, params, x, y):
    return reference.loss_and_grads(spec, params, x, y)


def half(spec, params, x, y):
    """Gradients half what they should be: a FAIL the checks must still report."""
    loss, grads = correct(spec, params, x, y)
    return loss, [(dW / 2, db / 2) for dW, db in grads]


def raises(spec, params, x, y):
    raise RuntimeError("deliberately broken")


def exits_0_in_step(spec, params, x, y):
    os._exit(0)


def sys_exit_0_in_step(spec, params, x, y):
    sys.exit(0)


def segfaults(spec, params, x, y):
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV


def hangs_ignoring_sigterm(spec, params, x, y):
    """Ignores SIGTERM, starts a child that ignores it too, and hangs: only SIGKILL of
    the whole group ends them. Writes both pids to $HOSTILE_PIDS when set."""
    import subprocess

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                                    "time.sleep(3600)"])
    if os.environ.get("HOSTILE_PIDS"):
        with open(os.environ["HOSTILE_PIDS"], "a") as fh:
            fh.write(f"{os.getpid()} {child.pid}\n")
    time.sleep(3600)


def monkeypatches_the_judge(spec, params, x, y):
    """All-zero gradients, and the harness's checks patched to pass everything, in
    whatever process this runs in."""
    import harness.checks.compare as compare
    import harness.checks.runner as runner
    from harness.core.results import CheckResult, Verdict

    compare.failing = lambda reports: []
    runner.run_check = lambda check, trial: CheckResult(check.__name__, trial.impl.name, "", Verdict.PASS)
    loss, grads = correct(spec, params, x, y)
    return loss, [(dW * 0, db * 0) for dW, db in grads]


def closes_stdout(spec, params, x, y):
    """Closes file descriptor 1 and sys.stdout, then answers wrong."""
    sys.stdout.close()
    try:
        os.close(1)
    except OSError:
        pass
    return half(spec, params, x, y)


_flooded = False


def floods_stdout(spec, params, x, y):
    """Prints 200 MB (once per process), then answers wrong."""
    global _flooded
    if not _flooded:
        _flooded = True
        line = "x" * 1023 + "\n"
        for _ in range(200 * 1024):
            sys.stdout.write(line)
        sys.stdout.flush()
    return half(spec, params, x, y)
