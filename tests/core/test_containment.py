"""Containing plug-in code in-process: the user's Ctrl-C is told from a plug-in's
KeyboardInterrupt, global state a plug-in changes is put back, and what it raised is
summarised in one bounded line."""

import os
import re
import signal
import sys
import threading
import warnings

import numpy as np
import pytest

from harness.core.containment import (
    MESSAGE_LIMIT,
    described,
    message_of,
    restoring_global_state,
    summarise,
    user_interrupted,
    watching_interrupts,
)


def test_a_keyboard_interrupt_without_a_sigint_is_not_the_users():
    with watching_interrupts():
        assert not user_interrupted(KeyboardInterrupt())


def test_a_real_sigint_while_watching_is_the_users_and_still_interrupts():
    with pytest.raises(KeyboardInterrupt) as info, watching_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**6):  # Python runs the handler between bytecodes
            pass
    assert user_interrupted(info.value)
    with watching_interrupts():  # a new watch starts clean
        assert not user_interrupted(KeyboardInterrupt())


def test_watching_puts_the_previous_handler_back_and_nests():
    before = signal.getsignal(signal.SIGINT)
    with watching_interrupts():
        inner = signal.getsignal(signal.SIGINT)
        assert inner is not before
        with watching_interrupts():
            assert signal.getsignal(signal.SIGINT) is inner
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_nothing_is_the_users():
    seen = []

    def worker():
        with watching_interrupts():
            seen.append(user_interrupted(KeyboardInterrupt()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False]


def test_global_state_is_put_back(tmp_path):
    before = (np.geterr(), list(warnings.filters), dict(os.environ), os.getcwd(), list(sys.path), sys.getrecursionlimit(),
              sys.stdout, sys.stderr)
    with restoring_global_state():
        np.seterr(all="raise")
        warnings.simplefilter("error")
        os.environ["BACKPROP_HARNESS_TEST"] = "1"
        del os.environ["PATH"]
        os.chdir(tmp_path)
        sys.path.clear()
        sys.setrecursionlimit(100)
        sys.stdout = sys.stderr = None
    assert (np.geterr(), list(warnings.filters), dict(os.environ), os.getcwd(), list(sys.path), sys.getrecursionlimit(),
            sys.stdout, sys.stderr) == before


def test_state_is_put_back_when_the_body_raises():
    before = np.geterr()
    with pytest.raises(SystemExit), restoring_global_state():
        np.seterr(all="raise")
        raise SystemExit(0)
    assert np.geterr() == before


def test_a_summary_is_one_bounded_line_naming_the_phase_type_and_place():
    try:
        raise RuntimeError("line one\nline two " + "x" * 10_000)
    except RuntimeError as exc:
        text = summarise(exc, "step")
    assert text.startswith("step raised RuntimeError: line one line two xxx") and "\n" not in text
    assert f"... ({10_018:,} characters)" in text and len(text) < MESSAGE_LIMIT + 100
    assert re.search(r" \(test_containment.py:\d+\)$", text)


class Unprintable(Exception):
    def __str__(self):
        raise SystemExit("no")


def test_a_message_that_cannot_be_read_says_so_and_an_empty_one_is_left_out():
    assert message_of(Unprintable()) == "<the message could not be read: SystemExit>"
    assert described(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert described(ValueError("bad")) == "ValueError: bad"
