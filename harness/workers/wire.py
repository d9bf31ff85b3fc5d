"""The worker protocol's framing and array transport (``docs/worker-protocol.md``).

A message is one line of UTF-8 JSON ending in a newline. A NumPy array inside it is
a small object with ``dtype`` and ``shape`` (little-endian dtypes only) and one of:

- ``"buffer": k`` -- the k-th raw buffer after the line: the line then has a
  top-level ``"buffers": [{"dtype", "shape", "nbytes"}, ...]`` and those bytes
  follow the newline in order, unpadded (the fast form for any language);
- ``"offset": o`` -- bytes at offset ``o`` of the shared-memory segment the harness
  gave a local worker (the fastest form, negotiated in ``start``);
- ``"base64": "..."`` or ``"data": [...]`` (row-major, ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"`` as strings) -- pure JSON lines, for tools that want nothing else.

Nothing received is executed or unpickled: JSON and raw numbers only, every array
checked (allowed dtype, dimensions, size within the caller's limit) before use.
No processes here; ``process`` and ``python_worker`` move the bytes.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

from harness.core.out_of_process import RemoteError

PROTOCOL = "backprop-harness-worker/1"
ARRAY_FORMS = ("buffer", "base64", "data")
DTYPES = ("<f8", "<f4", "<f2", "<i8", "<i4")
MAX_DIMS = 8
MAX_LINE = 64 << 20  # bytes of one JSON line; arrays belong in buffers
ALIGN = 64  # offsets of arrays in a shared segment
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class ProtocolError(RemoteError):
    """A message that breaks the protocol: not JSON, a bad array, too large."""


# --- arrays out ------------------------------------------------------------------


def _wire_dtype(array: np.ndarray) -> str:
    code = array.dtype.str if array.dtype.byteorder in "<=|" else array.dtype.newbyteorder("<").str
    code = "<" + code[1:]
    if code not in DTYPES:
        raise ProtocolError(f"an array of dtype {array.dtype} cannot be sent; expected one of {', '.join(DTYPES)}")
    return code


class Encoder:
    """Turns the arrays inside a message into descriptors, in one ``form``; arrays
    that fit in ``segment`` (a writable buffer, from ``offset``) go there."""

    def __init__(self, form: str = "buffer", segment=None, offset: int = 0, end: int | None = None, in_place=None,
                 known=None):
        if form not in ARRAY_FORMS:
            raise ProtocolError(f"array form {form!r}: expected one of {', '.join(ARRAY_FORMS)}")
        self.form, self.segment = form, segment
        self.offset = offset
        self.end = len(segment) if segment is not None and end is None else end
        # in_place: (start, end) of the segment where arrays already lie (a step wrote
        # its gradients there): those are described by their offset, not copied
        self.in_place = in_place if segment is not None else None
        self._base = None  # the segment's address, found when first needed
        # known: {id(array): (array, offset)}, arrays already copied into the segment
        # (segment.Kept): named by their offset
        self.known = known or {}
        self.buffers: list[memoryview] = []
        self.descriptors: list[dict] = []

    def leaf(self, value) -> dict:
        hit = self.known.get(id(value))
        if hit is not None and hit[0] is value and value.flags.c_contiguous:
            code = _wire_dtype(value)
            if value.dtype.str == code:
                return {"dtype": code, "shape": list(value.shape), "offset": hit[1]}
        array = value if type(value) is np.ndarray else np.asarray(value)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        code = _wire_dtype(array)
        if array.dtype.str != code:  # big-endian data: little-endian on the wire
            array = array.astype(code)
        head = {"dtype": code, "shape": list(array.shape)}
        if self.in_place is not None and array.nbytes >= _IN_PLACE_MIN:
            start, end = self.in_place
            address = _address(array) - self._segment_address()
            if start <= address and address + array.nbytes <= end:
                return {**head, "offset": address}
        raw = memoryview(array).cast("B") if array.size and array.ndim else memoryview(array.reshape(-1)).cast("B")
        if self.segment is not None:
            start = -(-self.offset // ALIGN) * ALIGN
            if start + raw.nbytes <= self.end:
                self.segment[start : start + raw.nbytes] = raw
                self.offset = start + raw.nbytes
                return {**head, "offset": start}
        if self.form == "buffer":
            self.descriptors.append({**head, "nbytes": raw.nbytes})
            self.buffers.append(raw)
            return {"buffer": len(self.buffers) - 1}
        if self.form == "base64":
            return {**head, "base64": base64.b64encode(raw).decode("ascii")}
        flat = array.reshape(-1).tolist()
        return {**head, "data": [v if math.isfinite(v) else _nonfinite_name(v) for v in flat]}

    def _segment_address(self) -> int:
        if self._base is None:
            self._base = _address(np.frombuffer(self.segment, np.uint8))
        return self._base

    def walk(self, value):
        kind = type(value)  # the common types first, by identity: this runs for every value of every message
        if kind in _PLAIN:
            return value
        if kind is dict:
            return {k: self.walk(v) for k, v in value.items()}
        if kind is np.ndarray or isinstance(value, np.generic):
            return self.leaf(value)
        if isinstance(value, dict):
            return {k: self.walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.walk(v) for v in value]
        return self.leaf(value) if isinstance(value, np.ndarray) else value


_PLAIN = frozenset((str, int, float, bool, type(None)))
_IN_PLACE_MIN = 4096  # bytes: a smaller array is copied rather than looked for in the segment


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _nonfinite_name(v: float) -> str:
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def encode(message: dict, form: str = "buffer", *, segment=None, offset: int = 0, end: int | None = None,
           output: tuple | None = None, in_place: tuple | None = None, known: dict | None = None):
    """``(line, buffers)``: the JSON line (with its newline) and the raw buffers to
    write after it. Arrays are placed in ``segment`` between ``offset`` and ``end``
    while they fit, the rest as buffers; arrays that already lie in ``segment``
    within ``in_place``, ``(start, end)``, are named by their offset, not copied;
    ``output``, ``(start, end)``, is the region of the segment a request grants the
    answer's arrays; ``known`` names arrays already in ``segment`` (``Encoder``)."""
    encoder = Encoder(form, segment, offset, end, in_place, known)
    body = encoder.walk(message)
    if encoder.descriptors:
        body["buffers"] = encoder.descriptors
    if output is not None:
        body["output_offset"], body["output_end"] = output
    line = json.dumps(body, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    return line, encoder.buffers


# --- arrays in -------------------------------------------------------------------


def _shape(shape, where: str) -> tuple:
    if (type(shape) is not list or len(shape) > MAX_DIMS
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"{where}: shape {shape!r} is not a list of at most {MAX_DIMS} integers >= 0")
    return tuple(shape)


_NUMPY_DTYPES = {code: np.dtype(code) for code in DTYPES}


def _dtype(code, where: str) -> np.dtype:
    try:
        return _NUMPY_DTYPES[code]
    except (KeyError, TypeError):
        raise ProtocolError(f"{where}: dtype {code!r} is not one of {', '.join(DTYPES)}") from None


class Decoder:
    """Rebuilds the arrays of one received message, checking each, and counting the
    bytes they take against ``limit``."""

    def __init__(self, limit: int, buffers: bytearray | None = None, descriptors=(), segment=None, lend=None):
        self.limit, self.used = limit, 0
        self.buffers, self.descriptors, self.segment, self.lend = buffers, list(descriptors), segment, lend
        self.starts = []
        position = 0
        for d in self.descriptors:
            self.starts.append(position)
            position += d["nbytes"]

    def _count(self, nbytes: int, where: str) -> None:
        self.used += nbytes
        if self.used > self.limit:
            raise ProtocolError(f"{where}: arrays of more than {self.limit:,} bytes in one message (the limit for this answer)")

    def leaf(self, d: dict, where: str) -> np.ndarray:
        if "buffer" in d:
            k = d["buffer"]
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(self.descriptors):
                raise ProtocolError(f"{where}: buffer {k!r} is not one of the {len(self.descriptors)} buffers listed")
            desc = self.descriptors[k]
            dtype, shape = _NUMPY_DTYPES[desc["dtype"]], tuple(desc["shape"])
            return np.frombuffer(self.buffers, dtype, math.prod(shape), self.starts[k]).reshape(shape)
        dtype, shape = _dtype(d.get("dtype"), where), _shape(d.get("shape"), where)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        self._count(nbytes, where)
        if "offset" in d:
            o = d["offset"]
            if self.segment is None:
                raise ProtocolError(f"{where}: an array in shared memory, but no segment was agreed on")
            if not isinstance(o, int) or isinstance(o, bool) or o < 0 or o + nbytes > len(self.segment):
                raise ProtocolError(f"{where}: offset {o!r} + {nbytes} bytes lies outside the {len(self.segment)}-byte segment")
            lent = self.lend(o, nbytes) if self.lend is not None else None
            if lent is not None:  # a view of the region granted for this answer (see segment.Lender)
                return lent.view(dtype).reshape(shape)
            # Anywhere else, a copy: the segment is written again by the next message.
            return np.frombuffer(self.segment, dtype, count, o).reshape(shape).copy()
        if "base64" in d:
            try:
                raw = base64.b64decode(d["base64"], validate=True)
            except (TypeError, ValueError) as exc:
                raise ProtocolError(f"{where}: base64 that does not decode ({exc})") from None
            if len(raw) != nbytes:
                raise ProtocolError(f"{where}: {len(raw)} bytes of base64 for shape {list(shape)} of {dtype.str} ({nbytes} bytes)")
            return np.frombuffer(bytearray(raw), dtype).reshape(shape)
        if "data" in d:
            data = d["data"]
            if not isinstance(data, list) or len(data) != count:
                raise ProtocolError(f"{where}: 'data' must be a list of {count} numbers for shape {list(shape)}")
            try:
                values = [_NONFINITE[v] if isinstance(v, str) else v for v in data]
                if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                    raise TypeError
                return np.array(values, dtype).reshape(shape)
            except (KeyError, TypeError, OverflowError):
                raise ProtocolError(f"{where}: 'data' holds something other than numbers, 'NaN', 'Infinity', '-Infinity'") from None
        raise ProtocolError(f"{where}: an array needs one of 'buffer', 'offset', 'base64' or 'data'")

    def walk(self, value, where: str):
        """``value`` with its arrays rebuilt. The error of a bad array names where it
        is (``message.output.grads[0][1]``): that path is spelt out only on an error, by
        walking again (naming every node on the way costs more than the rest)."""
        used = self.used
        try:
            return self._walk(value)
        except ProtocolError:
            self.used = used
            return self._walk_naming(value, where)  # raises the same error, located

    def _walk(self, value):
        if type(value) is dict:
            if "buffer" in value or ("dtype" in value and "shape" in value):
                return self.leaf(value, "?")
            return {k: self._walk(v) for k, v in value.items()}
        if type(value) is list:
            return [self._walk(v) for v in value]
        return value

    def _walk_naming(self, value, where: str):
        if isinstance(value, dict):
            if "buffer" in value or ("dtype" in value and "shape" in value):
                return self.leaf(value, where)
            return {k: self._walk_naming(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk_naming(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value


def parse_line(line: bytes) -> dict:
    """The JSON object on one line."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        text = line[:120].decode("utf-8", "replace").rstrip()
        raise ProtocolError(f"a line that is not JSON ({exc}): {text!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a JSON line that is not an object: {line[:120]!r}")
    return message


def buffer_sizes(message: dict, limit: int) -> list[dict]:
    """The raw buffers the line announces (checked), to read after it."""
    descriptors = message.pop("buffers", [])
    if not isinstance(descriptors, list):
        raise ProtocolError(f"'buffers' must be a list, got {type(descriptors).__name__}")
    total = 0
    for k, d in enumerate(descriptors):
        where = f"buffers[{k}]"
        if not isinstance(d, dict):
            raise ProtocolError(f"{where}: expected an object with dtype, shape and nbytes")
        dtype, shape = _dtype(d.get("dtype"), where), _shape(d.get("shape"), where)
        nbytes = math.prod(shape) * dtype.itemsize
        if d.get("nbytes") != nbytes:
            raise ProtocolError(f"{where}: nbytes {d.get('nbytes')!r}, but shape {list(shape)} of {dtype.str} is {nbytes} bytes")
        total += nbytes
    if total > limit:
        raise ProtocolError(f"buffers of {total:,} bytes announced, beyond the limit of {limit:,} for this answer")
    return descriptors


def decode(message: dict, descriptors, buffers, *, limit: int, segment=None, lend=None) -> dict:
    """``message`` with every array descriptor replaced by a checked NumPy array;
    ``lend(offset, nbytes)`` may give a view of the segment instead of a copy."""
    decoder = Decoder(limit, buffers, descriptors, segment, lend)
    decoder.used = sum(d["nbytes"] for d in descriptors)
    return decoder.walk(message, "message")


def read_raw(stream, *, limit: int = 1 << 40):
    """``(message, descriptors, buffers)`` from a blocking binary stream, arrays not yet
    decoded (``decode`` does that); ``None`` at end of input."""
    line = stream.readline(MAX_LINE + 1)
    if not line:
        return None
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise ProtocolError(f"a line longer than {MAX_LINE:,} bytes, or cut short")
    message = parse_line(line)
    descriptors = buffer_sizes(message, limit)
    total = sum(d["nbytes"] for d in descriptors)
    buffers = bytearray(total)
    view, got = memoryview(buffers), 0
    while got < total:
        n = stream.readinto(view[got:])
        if not n:
            raise ProtocolError(f"input ended {total - got} bytes before the end of the buffers")
        got += n
    return message, descriptors, buffers


def read_message(stream, *, limit: int = 1 << 40, segment=None) -> dict | None:
    """One message from a blocking binary stream, arrays decoded (``None`` at end of input)."""
    raw = read_raw(stream, limit=limit)
    if raw is None:
        return None
    message, descriptors, buffers = raw
    return decode(message, descriptors, buffers, limit=limit, segment=segment)


def write_message(stream, line: bytes, buffers) -> None:
    stream.write(line)
    for b in buffers:
        stream.write(b)
    stream.flush()
