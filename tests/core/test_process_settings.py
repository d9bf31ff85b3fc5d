"""The process settings a step is timed under: pinned thread pools, a steady allocator."""

import subprocess
import sys

import pytest

from harness.core.process_settings import pin_threads


def test_pin_threads_limits_every_blas_pool():
    from threadpoolctl import threadpool_info

    pin_threads(1)
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())


FAULTS_SCRIPT = """
import ctypes, resource, sys
import numpy as np
from harness.core.process_settings import steady_allocator
if sys.argv[1] == "steady":
    assert steady_allocator()
else:  # a fixed 1 MiB mmap threshold: every large block goes back to the kernel on free
    assert ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)
np.ones(2 << 20)  # 16 MiB, once, so that the heap has grown to it
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    np.ones(2 << 20)  # allocate, touch every page, free
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_steady_allocator_keeps_freed_blocks_so_a_repeated_step_does_not_fault():
    def faults(mode):
        run = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(run.stdout)

    # Ten fresh 16 MiB blocks fault at least once per 2 MiB (transparent huge pages;
    # once per 4 KiB page without them): 80 or more. Blocks kept in the heap, not once each.
    assert faults("unmapped") >= 80  # the measurement sees faults when blocks are returned
    assert faults("steady") < 8
