"""The wire format: every array form round-trips exactly, and everything a worker
could send that is not JSON plus checked numbers is refused with the reason."""

import base64
import io
import json
import math

import numpy as np
import pytest

from harness.workers import wire

ARRAYS = [
    np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
    np.float32(1.5),
    np.asarray(2.0),
    np.zeros((0, 3), np.float32),
    np.arange(6, dtype=">f8").reshape(2, 3),  # big-endian: little on the wire
    np.array([3, 1, 2], np.int64),
    np.arange(6.0).reshape(3, 2).T,  # not contiguous
    np.array([np.nan, np.inf, -np.inf, -0.0], np.float64),
]


def roundtrip(message, form="buffer", **kwargs):
    line, buffers = wire.encode(message, form, **kwargs)
    stream = io.BufferedReader(io.BytesIO(line + b"".join(bytes(b) for b in buffers)))
    return wire.read_message(stream, **({"segment": kwargs["segment"]} if "segment" in kwargs else {}))


@pytest.mark.parametrize("form", wire.ARRAY_FORMS)
@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{np.asarray(a).dtype}{np.shape(a)}")
def test_every_form_carries_every_array_exactly(form, array):
    got = roundtrip({"a": array, "nested": [array, {"deep": array}], "n": 3}, form)
    for value in (got["a"], got["nested"][0], got["nested"][1]["deep"]):
        assert value.shape == np.shape(array) and value.dtype == np.asarray(array).dtype.newbyteorder("=")
        np.testing.assert_array_equal(value, array)
        assert np.array_equal(np.signbit(value), np.signbit(array))  # -0.0 stays -0.0
    assert got["n"] == 3


def test_a_line_lists_its_buffers_and_they_follow_it_in_order():
    line, buffers = wire.encode({"x": np.ones((2, 2)), "y": np.zeros(3, np.float32)})
    body = json.loads(line)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert body["x"] == {"buffer": 0} and body["y"] == {"buffer": 1}
    assert body["buffers"] == [{"dtype": "<f8", "shape": [2, 2], "nbytes": 32}, {"dtype": "<f4", "shape": [3], "nbytes": 12}]
    assert [len(bytes(b)) for b in buffers] == [32, 12]


def test_pure_json_forms_need_no_buffers_and_write_non_finite_values_as_strings():
    line, buffers = wire.encode({"x": np.array([1.0, math.nan, math.inf])}, "data")
    assert buffers == [] and json.loads(line)["x"]["data"] == [1.0, "NaN", "Infinity"]
    assert b"NaN," not in line  # strict JSON: no bare NaN literal


def test_arrays_go_into_a_segment_while_they_fit_and_the_rest_as_buffers():
    segment = bytearray(256)
    line, buffers = wire.encode({"a": np.ones(8), "b": np.ones(100)}, segment=memoryview(segment), end=200,
                                output=(200, 256))
    body = json.loads(line)
    assert body["a"] == {"dtype": "<f8", "shape": [8], "offset": 0}  # 64 bytes at 0
    assert body["b"] == {"buffer": 0} and len(buffers) == 1  # 800 bytes do not fit before 200
    assert (body["output_offset"], body["output_end"]) == (200, 256)
    np.testing.assert_array_equal(np.frombuffer(segment, np.float64, 8), np.ones(8))


def test_an_array_in_shared_memory_is_copied_unless_lent():
    segment = bytearray(128)
    segment[:16] = np.array([1.0, 2.0]).tobytes()
    message = {"a": {"dtype": "<f8", "shape": [2], "offset": 0}}
    copied = wire.decode(dict(message), [], bytearray(), limit=1 << 20, segment=memoryview(segment))["a"]
    assert not np.shares_memory(copied, np.frombuffer(segment, np.uint8))
    base = np.frombuffer(segment, np.uint8)
    lent = wire.decode(dict(message), [], bytearray(), limit=1 << 20, segment=memoryview(segment),
                       lend=lambda offset, n: base[offset:offset + n])["a"]
    assert np.shares_memory(lent, base) and list(lent) == [1.0, 2.0]


@pytest.mark.parametrize(("line", "words"), [
    (b"not json\n", "not JSON"),
    (b"[1, 2]\n", "not an object"),
    (b'{"a": {"dtype": "|O", "shape": [1], "data": [1]}}\n', "dtype '|O' is not one of"),
    (b'{"a": {"dtype": "<c16", "shape": [1], "data": [1]}}\n', "dtype '<c16'"),
    (b'{"a": {"dtype": "<f8", "shape": [-1], "data": []}}\n', "shape [-1]"),
    (b'{"a": {"dtype": "<f8", "shape": [1,1,1,1,1,1,1,1,1], "data": [1]}}\n', "at most 8"),
    (b'{"a": {"dtype": "<f8", "shape": [2], "data": [1]}}\n', "list of 2 numbers"),
    (b'{"a": {"dtype": "<f8", "shape": [1], "data": ["__import__(\'os\')"]}}\n', "something other than numbers"),
    (b'{"a": {"dtype": "<f8", "shape": [1], "data": [true]}}\n', "something other than numbers"),
    (b'{"a": {"dtype": "<f8", "shape": [2], "base64": "AAAA"}}\n', "3 bytes of base64"),
    (b'{"a": {"dtype": "<f8", "shape": [1], "base64": "***"}}\n', "does not decode"),
    (b'{"a": {"dtype": "<f8", "shape": [1], "offset": 0}}\n', "no segment was agreed on"),
    (b'{"a": {"dtype": "<f8", "shape": [1]}}\n', "one of 'buffer', 'offset', 'base64' or 'data'"),
    (b'{"a": {"buffer": 0}}\n', "buffer 0 is not one of the 0 buffers"),
    (b'{"buffers": [{"dtype": "<f8", "shape": [2], "nbytes": 15}]}\n', "nbytes 15, but shape [2] of <f8 is 16 bytes"),
    (b'{"buffers": {"dtype": "<f8"}}\n', "'buffers' must be a list"),
    (b'{"buffers": [{"dtype": "<f8", "shape": [4], "nbytes": 32}]}\n' + b"\0" * 8, "input ended 24 bytes before"),
    (b'{"a": 1', "cut short"),
])
def test_what_is_not_the_protocol_is_refused_saying_why(line, words):
    with pytest.raises(wire.ProtocolError, match=None) as info:
        wire.read_message(io.BufferedReader(io.BytesIO(line)))
    assert words in str(info.value)


def test_arrays_beyond_the_answers_limit_are_refused_before_they_are_read():
    announced = b'{"buffers": [{"dtype": "<f8", "shape": [1000000000], "nbytes": 8000000000}]}\n'
    with pytest.raises(wire.ProtocolError, match="beyond the limit of 1,048,576"):
        wire.read_message(io.BufferedReader(io.BytesIO(announced)), limit=1 << 20)
    big = {"a": {"dtype": "<f8", "shape": [200000], "base64": ""}}
    with pytest.raises(wire.ProtocolError, match="more than 1,048,576 bytes"):
        wire.decode(big, [], bytearray(), limit=1 << 20)


def test_an_array_the_wire_cannot_carry_is_refused_by_name():
    with pytest.raises(wire.ProtocolError, match="complex128 cannot be sent"):
        wire.encode({"a": np.zeros(2, np.complex128)})
    with pytest.raises(wire.ProtocolError, match="array form 'pickle'"):
        wire.encode({"a": np.zeros(2)}, "pickle")


def test_end_of_input_is_none():
    assert wire.read_message(io.BufferedReader(io.BytesIO(b""))) is None


def test_a_bad_array_deep_in_a_message_is_named_by_where_it_is():
    fine = {"dtype": "<f8", "shape": [40000], "base64": base64.b64encode(bytes(320000)).decode()}
    message = {"output": {"grads": [[fine, fine], [{"dtype": "<c16", "shape": [1], "data": [1]}, fine]]}}
    with pytest.raises(wire.ProtocolError) as info:
        wire.decode(message, [], bytearray(), limit=1 << 20)  # 640 kB before it: under the limit, counted once
    assert str(info.value).startswith("message.output.grads[1][0]: dtype '<c16' is not one of")
