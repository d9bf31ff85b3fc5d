"""Shared memory: a request's arrays and its answer's region in one segment, answers
lent as views whose region is not reused while they live, and a larger segment when
a message does not fit."""

import gc
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.workers import segment as segments
from harness.workers import wire

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def arena():
    arena = segments.Arena.create(1 << 20)
    if arena is None:
        pytest.skip("no POSIX shared memory here")
    yield arena
    arena.close()


def answer_in(arena, line, arrays):
    """What a worker does: write ``arrays`` into the granted region, answer with offsets.
    (Through the harness's own mapping: attaching in this process would confuse its
    resource tracker, which a worker, another process, has to itself.)"""
    request = json.loads(line)
    answer, _ = wire.encode(arrays, segment=arena.buffer, offset=request["output_offset"], end=request["output_end"])
    return json.loads(answer)


def attach_elsewhere(described, size=None) -> subprocess.CompletedProcess:
    code = ("import sys; from harness.workers import segment; "
            "segment.attach(sys.argv[1], int(sys.argv[2])).close()")
    return subprocess.run([sys.executable, "-c", code, described["name"], str(size or described["size"])],
                          capture_output=True, text=True, cwd=ROOT)


def test_a_request_and_its_answer_share_nothing_but_the_segment(arena):
    x = np.arange(10.0)
    line, buffers, lender = arena.encode({"x": x}, "buffer", reserve=1024)
    body = json.loads(line)
    assert buffers == [] and body["x"]["offset"] == 0
    assert body["output_offset"] >= x.nbytes  # the answer's region does not overlap the request's
    answer = answer_in(arena, line, {"g": x * 2})
    got = wire.decode(answer, [], bytearray(), limit=1 << 20, segment=arena.buffer, lend=lender.lend)["g"]
    lender.done()
    np.testing.assert_array_equal(got, x * 2)
    assert np.shares_memory(got, np.frombuffer(arena.buffer, np.uint8))  # lent, not copied


def test_a_lent_region_is_not_reused_while_a_view_of_it_lives(arena):
    line, _, lender = arena.encode({"x": np.ones(4)}, "buffer", reserve=4096)
    answer = answer_in(arena, line, {"g": np.full(8, 7.0)})
    kept = wire.decode(answer, [], bytearray(), limit=1 << 20, segment=arena.buffer, lend=lender.lend)["g"]
    lender.done()
    for _ in range(5):  # later requests and answers go elsewhere
        line, _, other = arena.encode({"x": np.ones(4)}, "buffer", reserve=4096)
        answer_in(arena, line, {"g": np.zeros(8)})
        other.done()
    np.testing.assert_array_equal(kept, np.full(8, 7.0))
    region = json.loads(line)["output_offset"]
    del kept
    gc.collect()
    line, _, again = arena.encode({"x": np.ones(4)}, "buffer", reserve=4096)
    assert json.loads(line)["output_offset"] <= region  # freed, so first fit finds it again
    again.done()


def test_a_message_that_does_not_fit_moves_to_a_larger_segment_named_in_it(arena):
    old = arena.describe()
    line, buffers, lender = arena.encode({"x": np.ones(300_000)}, "buffer", reserve=1 << 20)  # 2.4 MB + 1 MiB
    body = json.loads(line)
    assert body["shared_memory"] == arena.describe() and arena.describe()["size"] > old["size"]
    assert buffers == [] and body["x"]["offset"] == 0
    lender.done()
    assert "FileNotFoundError" in attach_elsewhere(old).stderr  # the old one is unlinked: no worker can attach it
    assert attach_elsewhere(arena.describe()).returncode == 0


def test_without_room_even_in_a_new_segment_arrays_travel_as_buffers(arena, monkeypatch):
    monkeypatch.setattr(segments, "MAX_SIZE", 1 << 20)
    line, buffers, lender = arena.encode({"x": np.ones(300_000)}, "buffer", reserve=1 << 20)
    assert lender is None and json.loads(line)["x"] == {"buffer": 0} and len(buffers) == 1
    assert "output_offset" not in json.loads(line)


def test_regions_are_aligned_and_found_first_fit():
    seg = segments._new_segment(1 << 20)
    try:
        a, b, c = seg.allocate(10), seg.allocate(100), seg.allocate(10)
        assert (a, b, c) == (0, 64, 192) and all(s % wire.ALIGN == 0 for s in (a, b, c))
        seg.release(b)
        assert seg.allocate(64) == 64 and seg.allocate(1 << 21) is None
    finally:
        segments.retire(seg)


def test_a_worker_attaching_does_not_unlink_the_harness_segment(arena):
    described = arena.describe()
    assert attach_elsewhere(described).returncode == 0  # attached and exited: its tracker must not unlink it
    assert attach_elsewhere(described).returncode == 0  # still there
    assert "announced" in attach_elsewhere(described, described["size"] * 4).stderr


def test_kept_arrays_are_copied_by_the_first_request_only_and_named_by_offset_after(arena):
    x, y = np.arange(1000.0), np.arange(8)
    kept = segments.Kept((x, y))
    offsets = []
    for k in range(3):
        line, buffers, lender = arena.encode({"x": x, "y": y, "k": np.full(3, k)}, "buffer", reserve=1024, kept=kept)
        body = json.loads(line)
        assert buffers == [] and body["x"]["dtype"] == "<f8" and body["x"]["shape"] == [1000]
        offsets.append((body["x"]["offset"], body["y"]["offset"]))
        got = wire.decode(body, [], bytearray(), limit=1 << 20, segment=arena.buffer)
        np.testing.assert_array_equal(got["x"][1:], x[1:])
        assert got["x"][0] == (x[0] if k == 0 else -1.0)  # the mark below: not copied again
        np.testing.assert_array_equal(got["y"], y)
        np.testing.assert_array_equal(got["k"], np.full(3, k))  # the rest of the message is copied as always
        lender.done()
        np.frombuffer(arena.buffer, np.float64, 1, body["x"]["offset"])[0] = -1.0
    assert offsets[0] == offsets[1] == offsets[2]
    assert json.loads(arena.encode({"x": x}, "buffer", reserve=1024, kept=kept)[0])["x"]["offset"] == offsets[0][0]
    assert json.loads(arena.encode({"x": x.copy()}, "buffer", reserve=1024, kept=kept)[0])["x"]["offset"] != offsets[0][0]


def test_kept_arrays_move_with_the_segment_and_free_their_region_when_gone(arena):
    x = np.arange(1000.0)
    kept = segments.Kept((x,))
    line, _, lender = arena.encode({"x": x}, "buffer", reserve=1024, kept=kept)
    lender.done()
    start = json.loads(line)["x"]["offset"]
    line, _, lender = arena.encode({"x": x, "big": np.ones(300_000)}, "buffer", reserve=1 << 20, kept=kept)  # grows
    body = json.loads(line)
    assert "shared_memory" in body
    np.testing.assert_array_equal(wire.decode(body, [], bytearray(), limit=1 << 30, segment=arena.buffer)["x"], x)
    lender.done()
    moved = body["x"]["offset"]
    del kept
    gc.collect()
    assert arena.current.allocate(x.nbytes) == moved  # its region in the new segment is free again
    assert start >= 0


def test_a_known_array_is_named_by_offset_only_while_it_is_the_same_contiguous_array():
    segment = bytearray(1 << 16)
    x = np.arange(16.0)
    line, _ = wire.encode({"x": x}, segment=segment, known={id(x): (x, 4096)})
    assert json.loads(line)["x"] == {"dtype": "<f8", "shape": [16], "offset": 4096}
    other = x[::2]
    line, _ = wire.encode({"x": other}, segment=segment, known={id(other): (other, 4096)})
    assert json.loads(line)["x"]["offset"] == 0  # not contiguous: copied
    big = x.astype(">f8")
    line, _ = wire.encode({"x": big}, segment=segment, known={id(big): (big, 4096)})
    assert json.loads(line)["x"]["offset"] == 0  # big-endian: converted and copied
