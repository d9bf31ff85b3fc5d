"""Implementations that misbehave in ways only a child interpreter survives.
Each is the plain-function shortcut; the isolation tests name them module:attr."""

import ctypes
import os
import time


def raises(spec, params, x, y):
    raise RuntimeError("deliberately broken")


def hangs(spec, params, x, y):
    time.sleep(3600)


def exits(spec, params, x, y):
    os._exit(7)


def segfaults(spec, params, x, y):
    ctypes.string_at(0)  # reads address 0: SIGSEGV
