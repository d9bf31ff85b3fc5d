"""Settings of the process a step is timed in: every thread pool pinned to a number
of threads, and glibc told to keep freed memory for the next step. The harness's
own process applies them for ``bench`` in process, and a worker applies them when
the harness asks it to (``threads`` in the protocol's ``start``)."""

from __future__ import annotations

import ctypes
import importlib.util
import sys


def pin_threads(threads: int, *, only_loaded: bool = False) -> None:
    """Every thread pool (OpenBLAS, OpenMP, torch's) to ``threads``: numpy's and
    torch's pools in one process on a small machine otherwise fight. Call after imports.
    ``only_loaded``: leave torch alone unless it is imported already (a worker whose
    implementation does not use it need not pay for importing it)."""
    from threadpoolctl import threadpool_limits

    wanted = "torch" in sys.modules if only_loaded else importlib.util.find_spec("torch") is not None
    if wanted:
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
    threadpool_limits(threads)


# mallopt(3) parameters, and the largest mmap threshold glibc accepts on 64-bit
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def steady_allocator() -> bool:
    """Keep the memory a step frees in glibc's heap for the next step.

    By default glibc hands large blocks to the kernel (mmap, and trimming the heap)
    and takes them back on the next step, so a step pays page faults or not depending
    on the order its arrays were allocated in: up to 10-15 % of a seed-model step, and
    different for each implementation. Raising both thresholds takes that out of every
    contender's timing alike. Returns whether it applied (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 16 * _MMAP_THRESHOLD_MAX)
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
