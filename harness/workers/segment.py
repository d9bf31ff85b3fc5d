"""Shared memory between the harness and a local worker, so that only small JSON
lines cross the pipe.

The harness owns the memory (``Arena``, one per worker): for each request it places
the request's arrays in one region and grants the answer another; the worker copies
the request's arrays out and writes its answer's arrays into the granted region.
The harness then hands out the answer's arrays as views of that region -- no copy --
and the region is reused only once every view of it is gone. When a region does not
fit, a larger segment replaces the old one (announced in the request), and the old
one is unlinked and unmapped once nothing refers to it.

A worker may always answer with raw buffers instead; an array it places outside the
region it was granted is copied, never lent.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import weakref

import numpy as np

from harness.workers import wire

MAX_SIZE = 1 << 30  # beyond this, arrays travel as raw buffers
_MIN_SIZE = 1 << 20


def _array_bytes(value, known=()) -> int:
    """Room for the arrays in ``value``, less those in ``known`` (already in the segment)."""
    if type(value) in _PLAIN:
        return 0
    if isinstance(value, (np.ndarray, np.generic)):
        return 0 if id(value) in known else np.asarray(value).nbytes + wire.ALIGN
    if isinstance(value, dict):
        return sum(_array_bytes(v, known) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v, known) for v in value)
    return 0


_PLAIN = frozenset((str, int, float, bool, type(None)))


def _round_up(n: int) -> int:
    return -(-n // wire.ALIGN) * wire.ALIGN


def attach(name: str, size: int):
    """The harness's segment seen from a worker (``shared_memory.SharedMemory``), which
    must neither unlink it nor let its resource tracker do so."""
    from multiprocessing import shared_memory

    if sys.version_info >= (3, 13):
        shm = shared_memory.SharedMemory(name=name, track=False)
    else:
        from multiprocessing import resource_tracker

        shm = shared_memory.SharedMemory(name=name)
        with contextlib.suppress(Exception):  # before 3.13 attaching registers it: undo that
            resource_tracker.unregister(shm._name, "shared_memory")
    if shm.size < size:
        raise wire.ProtocolError(f"shared memory {name!r} has {shm.size} bytes, {size} announced")
    return shm


class _Segment:
    """One shared-memory segment and the regions of it in use (start -> end)."""

    def __init__(self, shm):
        self.shm, self.live, self.lock = shm, {}, threading.Lock()

    @property
    def size(self) -> int:
        return self.shm.size

    def allocate(self, n: int) -> int | None:
        n = _round_up(max(n, 1))
        with self.lock:
            start = 0
            for s, e in sorted(self.live.items()):
                if s - start >= n:
                    break
                start = max(start, e)
            if start + n > self.size:
                return None
            self.live[start] = start + n
            return start

    def release(self, start: int) -> None:
        with self.lock:
            self.live.pop(start, None)

    def close(self) -> bool:
        """Unmap it if nothing refers to it any more; whether it was."""
        try:
            self.shm.close()
            return True
        except BufferError:  # views of it are still alive
            return False


class Lender:
    """Lends views of an answer's region; the region returns when the last view dies."""

    def __init__(self, segment: _Segment, start: int, end: int, inputs: int | None):
        self.segment, self.start, self.end, self.inputs = segment, start, end, inputs
        self.base = None

    def lend(self, offset: int, nbytes: int) -> np.ndarray | None:
        if not (self.start <= offset and offset + nbytes <= self.end):
            return None
        if self.base is None:
            self.base = np.frombuffer(self.segment.shm.buf, np.uint8, self.end - self.start, self.start)
            weakref.finalize(self.base, self.segment.release, self.start)
            tidy()  # a good moment to unmap what nothing refers to any more
        return self.base[offset - self.start : offset - self.start + nbytes]

    def done(self) -> None:
        """The answer is decoded: the request's region is free, and the answer's too if nothing was lent."""
        if self.inputs is not None:
            self.segment.release(self.inputs)
        if self.base is None:
            self.segment.release(self.start)
        self.base = None  # the views keep it alive, not this


# Segments unlinked but perhaps still mapped by views the harness holds: kept here,
# never garbage-collected while mapped (SharedMemory's __del__ would fail on them),
# and unmapped once nothing refers to them.
_RETIRED: list = []
_RETIRED_LOCK = threading.Lock()


def retire(segment: _Segment) -> None:
    with contextlib.suppress(Exception):
        segment.shm.unlink()  # the name goes now; the memory once unmapped
    with _RETIRED_LOCK:
        _RETIRED.append(segment)
    tidy()


def tidy() -> None:
    with _RETIRED_LOCK:
        _RETIRED[:] = [s for s in _RETIRED if not s.close()]


atexit.register(tidy)


class Arena:
    """The harness's shared memory for one worker."""

    def __init__(self, segment: _Segment):
        self.current = segment

    @classmethod
    def create(cls, size: int = _MIN_SIZE) -> Arena | None:
        """A new arena, or ``None`` where there is no shared memory (then raw buffers do)."""
        segment = _new_segment(size)
        return None if segment is None else cls(segment)

    @property
    def buffer(self) -> memoryview:
        return self.current.shm.buf

    def describe(self) -> dict:
        return {"name": self.current.shm.name, "size": self.current.size}

    def encode(self, message: dict, form: str, reserve: int, kept: Kept | None = None):
        """``(line, buffers, lender)``: ``message`` with its arrays in a region of the
        segment and a region of ``reserve`` bytes granted for the answer's; without
        room for both even in a new segment, plain buffers and ``lender`` None.
        The arrays of ``kept`` are copied into the segment once and named by offset."""
        known = kept.place(self.current) if kept is not None else {}
        need = _array_bytes(message, known)
        placed = self._place(need, reserve)
        if placed is None:
            grown = _new_segment(min(MAX_SIZE, max(2 * self.current.size, 2 * _round_up(need + reserve + _kept_bytes(kept)))))
            if grown is None or need + reserve > grown.size:
                return (*wire.encode(message, form), None)
            retire(self.current)
            self.current = grown
            message = {**message, "shared_memory": self.describe()}
            known = kept.place(self.current) if kept is not None else {}  # the old segment's copy is gone
            need = _array_bytes(message, known)
            placed = self._place(need, reserve)
            if placed is None:
                return (*wire.encode(message, form), None)
        inputs, output = placed
        line, buffers = wire.encode(message, form, segment=self.buffer, offset=inputs or 0,
                                    end=(inputs or 0) + need, output=(output, output + reserve), known=known)
        return line, buffers, Lender(self.current, output, output + reserve, inputs)

    def _place(self, need: int, reserve: int):
        inputs = self.current.allocate(need) if need else None
        if need and inputs is None:
            return None
        output = self.current.allocate(reserve)
        if output is None:
            if inputs is not None:
                self.current.release(inputs)
            return None
        return inputs, output

    def close(self) -> None:
        retire(self.current)


class Kept:
    """Arrays that several requests carry unchanged (the batch a bench loop steps on
    again and again): copied into the segment by the first request that carries them,
    named by offset in the next ones, and their region freed when this object goes.

    The bytes in the segment are a snapshot taken by the first request: later changes
    to the arrays are not followed (a new segment -- the arena grew, the worker was
    restarted -- takes a new copy of them as they are then). The worker copies what
    it reads out of the segment, as for any request, so a plug-in that changes its
    inputs changes its own copy, never what the next request names."""

    def __init__(self, arrays):
        self.arrays = [np.ascontiguousarray(a) for a in arrays]
        self.segment: _Segment | None = None
        self.known: dict = {}
        self._finalizer = None

    def place(self, segment: _Segment) -> dict:
        """``{id(array): (array, offset)}`` of these arrays in ``segment`` (empty when they do not fit)."""
        if self.segment is segment:
            return self.known
        self.forget()
        need = sum(_array_bytes(a) for a in self.arrays)
        start = segment.allocate(need)
        if start is None:
            return {}
        encoder = wire.Encoder("buffer", segment.shm.buf, start, start + need)
        offsets = [encoder.leaf(a).get("offset") for a in self.arrays]
        if None in offsets:  # a dtype the encoder converts: not worth keeping
            segment.release(start)
            return {}
        self.segment, self.known = segment, {id(a): (a, o) for a, o in zip(self.arrays, offsets)}
        self._finalizer = weakref.finalize(self, segment.release, start)
        return self.known

    def forget(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self.segment, self.known, self._finalizer = None, {}, None


def _kept_bytes(kept: Kept | None) -> int:
    return 0 if kept is None else sum(_array_bytes(a) for a in kept.arrays)


def _new_segment(size: int) -> _Segment | None:
    from multiprocessing import shared_memory

    try:
        return _Segment(shared_memory.SharedMemory(create=True, size=max(size, _MIN_SIZE)))
    except (OSError, ValueError):
        return None
