"""Shared memory between the harness and a local worker: one segment per worker,
created and owned by the harness, reused for every message and grown when a
message needs more.

The harness writes a request's arrays from offset 0 and tells the worker where its
answer's arrays may go (``output_offset``, to the end of the segment); only small
JSON lines then cross the pipe. A seed-size gradient (3.2 MB) costs two copies of
memory instead of a trip through a pipe (measured in ``benchmarks/worker_overhead.py``).
A worker may always answer with raw buffers instead, and the harness copies every
array out of the segment before it is used, since the next message overwrites it.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from harness.workers import wire

MAX_SIZE = 1 << 30  # beyond this, arrays travel as raw buffers
_MIN_SIZE = 1 << 20


def _array_bytes(value) -> int:
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).nbytes + wire.ALIGN
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v) for v in value)
    return 0


class Segment:
    """A POSIX shared-memory segment (``multiprocessing.shared_memory``)."""

    def __init__(self, shm):
        self.shm = shm

    @classmethod
    def create(cls, size: int) -> Segment | None:
        """A new segment, or ``None`` where there is no shared memory (then raw buffers do)."""
        from multiprocessing import shared_memory

        try:
            return cls(shared_memory.SharedMemory(create=True, size=max(size, _MIN_SIZE)))
        except (OSError, ValueError):
            return None

    @classmethod
    def attach(cls, name: str, size: int) -> Segment:
        """The harness's segment, seen from a worker (which must not unlink it)."""
        from multiprocessing import shared_memory

        if sys.version_info >= (3, 13):
            return cls(shared_memory.SharedMemory(name=name, track=False))
        from multiprocessing import resource_tracker

        shm = shared_memory.SharedMemory(name=name)
        # Before 3.13 attaching registers the segment with this process's resource
        # tracker, which would unlink it when the worker exits: the harness owns it.
        with contextlib.suppress(Exception):
            resource_tracker.unregister(shm._name, "shared_memory")
        if shm.size < size:
            raise wire.ProtocolError(f"shared memory {name!r} has {shm.size} bytes, {size} announced")
        return cls(shm)

    @property
    def buffer(self) -> memoryview:
        return self.shm.buf

    @property
    def size(self) -> int:
        return self.shm.size

    def describe(self) -> dict:
        return {"name": self.shm.name, "size": self.shm.size}

    def encode(self, message: dict, form: str, reserve: int):
        """``(line, buffers, old)``: ``message`` encoded with its arrays in this segment,
        grown first (to a new segment, announced in the message) when the arrays and
        ``reserve`` bytes for the answer do not fit; ``old`` is the segment replaced,
        to close once the worker has answered."""
        need = _array_bytes(message) + reserve
        old = None
        if need > self.size and self.size < MAX_SIZE:
            grown = Segment.create(min(MAX_SIZE, max(2 * self.size, 1 << (need - 1).bit_length())))
            if grown is not None:
                old, self.shm = Segment(self.shm), grown.shm
                message = {**message, "shared_memory": self.describe()}
        line, buffers = wire.encode(message, form, segment=self.buffer)
        return line, buffers, old

    def close(self, *, unlink: bool = True) -> None:
        with contextlib.suppress(Exception):
            self.shm.close()
        if unlink:
            with contextlib.suppress(Exception):
                self.shm.unlink()
