"""How much memory a run needs, estimated before anything is allocated, against what
the machine has: ``--sizes 4,1000000000,2`` is refused in one line instead of dying
in an allocation (or in the OOM killer) halfway through.

Estimates count 8-byte elements: ``P`` parameters and ``A`` activations (the batch
times the sum of the layer widths), each times how many arrays of that size a run
keeps at once. They are deliberately generous, rounded up from what the code holds:

- a check (``CHECK_PER_PARAMETER``, ``CHECK_PER_ACTIVATION``): the case and its copies
  (pristine, working, the batches B and the other parameters: 4 P), the
  implementation's own parameters and gradients (2 P) and forward/backward arrays
  (3 A), the oracle's center, radius and scale per parameter (3 P) and its forward
  and backward arrays (5 A + 6 A), the complex-step forward in complex128 (2 A,
  4 P), and the comparison's temporaries for the largest tensor (10 P);
- a timed step (``STEP_PER_*``): the case, the implementation's copies and arrays;
- training (``TRAIN_PER_*``): parameters, velocity, gradients and the
  implementation's copies (8 P), its forward and backward arrays (6 A), and the
  forward pass over the test set (2 A at the test set's size).
"""

from __future__ import annotations

import os

from harness.core.spec import NetworkSpec

BYTES = 8
CHECK_PER_PARAMETER, CHECK_PER_ACTIVATION = 25, 16
STEP_PER_PARAMETER, STEP_PER_ACTIVATION = 6, 6
TRAIN_PER_PARAMETER, TRAIN_PER_ACTIVATION = 8, 6


def activations(spec: NetworkSpec, batch: int) -> int:
    return batch * sum(spec.sizes)


def check_bytes(spec: NetworkSpec, batch: int) -> int:
    """Bytes a check of ``spec`` at ``batch`` holds at its peak, by the estimate above."""
    return BYTES * (CHECK_PER_PARAMETER * spec.n_params + CHECK_PER_ACTIVATION * activations(spec, batch))


def step_bytes(spec: NetworkSpec, batch: int) -> int:
    """Bytes one implementation's timed step of ``spec`` at ``batch`` holds."""
    return BYTES * (STEP_PER_PARAMETER * spec.n_params + STEP_PER_ACTIVATION * activations(spec, batch))


def train_bytes(spec: NetworkSpec, batch: int, n_test: int) -> int:
    """Bytes a training step of ``spec`` at ``batch`` and the test-set accuracy hold."""
    return BYTES * (TRAIN_PER_PARAMETER * spec.n_params + TRAIN_PER_ACTIVATION * activations(spec, batch)
                    + 2 * activations(spec, n_test))


# A mapping check holds about 43 float64 arrays the size of its first input at its
# peak (maximum resident set of `check --mapping ... --size N --in-process`, less the
# interpreter's: 350 bytes per element for relu and softmax at N = 10^6 and 4 * 10^6):
# 512 per element leaves room for mappings of several inputs.
MAPPING_CHECK_BYTES_PER_ELEMENT = 512


def mapping_check_bytes(size: int) -> int:
    """Bytes a mapping check of about ``size`` elements in its first input holds, by the estimate above."""
    return MAPPING_CHECK_BYTES_PER_ELEMENT * size


def available_bytes() -> int | None:
    """Memory the machine can give now: ``MemAvailable`` from ``/proc/meminfo``, else
    the physical memory; ``None`` where neither can be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def require(needed: int, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``needed`` bytes exceed what the machine
    has available (nothing is refused where that cannot be read)."""
    have = available_bytes()
    if have is not None and needed > have:
        raise ValueError(f"{what}: needs about {gib(needed)} of memory (estimated before allocating), "
                         f"more than the {gib(have)} available on this machine")
