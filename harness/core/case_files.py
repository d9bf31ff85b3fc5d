"""Case files: one ``.npz`` per case, so a failure can be rerun exactly and other tools
can hand the checker their own inputs.

Reading one trusts nothing in it: the zip directory is read first (a file that is
not a zip, a plain ``.npy``, a member that is not an array, or members that would
decompress to more than ``MAX_CASE_BYTES`` are refused before anything is
decompressed), then each member's ``.npy`` header (object arrays -- pickles -- and a
shape whose size the member cannot hold are refused before any array is allocated),
then every key's type, shape and values (finite, a non-empty batch, labels in
range). Every refusal is a ``ValueError`` of one line naming the file and the key.
"""

from __future__ import annotations

import os
import shlex
import zipfile

import numpy as np

from harness.core.cases import Case
from harness.core.output_files import generator, write_atomically
from harness.core.spec import DTYPES, NetworkSpec

# Decompressed size cap: the seed's 784-500-10 case at batch 64 is ~3.6 MiB, a batch of
# 100,000 MNIST images ~630 MiB in float64; beyond 2 GiB a case is a mistake or an attack.
MAX_CASE_BYTES = 2 * 2**30
_META = {"sizes", "activations", "loss", "x", "y", "seed", "_generator"}


def save_case(case: Case, path) -> None:
    """Write ``case`` as one ``.npz`` (atomically): ``sizes``, ``activations``, ``loss``,
    ``W0``, ``b0``, ``W1``, ..., ``x``, ``y``, ``seed`` when known, and ``_generator``
    (the harness's mark: a file holding it may be replaced by the next run)."""
    if case.seed is not None and not (isinstance(case.seed, (int, np.integer)) and 0 <= case.seed < 2**63):
        raise ValueError(f"seed={case.seed!r}: a case file holds seeds in 0..2**63-1")
    arrays = {
        "sizes": np.array(case.spec.sizes, np.int64),
        "activations": np.array(case.spec.activations),
        "loss": np.array(case.spec.loss),
        "x": case.x,
        "y": case.y,
        "_generator": np.array(generator()),
    }
    for i, (W, b) in enumerate(case.params):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    if case.seed is not None:
        arrays["seed"] = np.array(case.seed, np.int64)
    write_atomically(path, lambda fh: np.savez(fh, **arrays), binary=True)


def load_case(path) -> Case:
    """Read a case written by ``save_case`` (or by anyone, with the same keys); it runs
    in the dtype of its arrays. Problems raise ``ValueError`` naming the file and key."""
    try:
        return _load_case(path)
    except ValueError as exc:
        if f"case file {path}:" in str(exc):
            raise
        raise ValueError(f"case file {path}: {exc}") from None  # a check's words, with the file


def read_arrays(path, what: str = "an .npz (np.savez) holding sizes, activations, loss, W0, b0, ..., x, y") -> dict:
    """Every array of the ``.npz`` at ``path``, after checking that it is one (not a
    folder, not a single ``.npy``, a zip whose members are plain arrays, their sizes read
    from the directory and headers first and capped); ``ValueError`` naming the file
    otherwise. ``what`` says what the file should hold."""
    where = f"case file {path}"
    if not os.path.exists(path):
        raise ValueError(f"{where}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{where}: is a directory; expected an .npz file")
    with open(path, "rb") as fh:
        start = fh.read(6)
    if start == b"\x93NUMPY":
        raise ValueError(f"{where}: a single .npy array, not a case; expected {what}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{where}: not an .npz (zip) file")
    try:
        return _read_members(path, where)
    except ValueError:
        raise
    except Exception as exc:  # a corrupt directory or member: zipfile, zlib and numpy each have their own words
        raise ValueError(f"{where}: corrupt ({_kind(exc)}: {exc})") from None


def _load_case(path) -> Case:
    where = f"case file {path}"
    data = read_arrays(path)
    missing = [k for k in ("sizes", "activations", "loss", "x", "y") if k not in data]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}; expected sizes, activations, loss, W0, b0, ..., x, y")
    spec = NetworkSpec(_integers(data, "sizes", where), _names(data, "activations", where), _names(data, "loss", where, one=True))
    expected = _META | {f"{kind}{i}" for i in range(spec.n_layers) for kind in "Wb"}
    unknown = sorted(set(data) - expected)
    if unknown:
        raise ValueError(f"{where}: unexpected key(s) {', '.join(unknown)}; sizes {spec.sizes} take W0..W{spec.n_layers - 1}, "
                         f"b0..b{spec.n_layers - 1}, x, y, sizes, activations, loss, seed")
    x = _floats(data, "x", where, None)
    dtype = x.dtype.name
    if x.ndim != 2 or x.shape[1] != spec.sizes[0]:
        raise ValueError(f"{where}: x has shape {x.shape}, expected (N, {spec.sizes[0]})")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: x holds an empty batch (shape {x.shape}); expected at least one sample")
    params = []
    for i, (w_shape, b_shape) in enumerate(spec.shapes()):
        pair = []
        for key, shape in ((f"W{i}", w_shape), (f"b{i}", b_shape)):
            if key not in data:
                raise ValueError(f"{where}: missing key {key} (sizes {spec.sizes} need W0..W{spec.n_layers - 1}, b0..b{spec.n_layers - 1})")
            array = _floats(data, key, where, dtype)
            if array.shape != shape:
                raise ValueError(f"{where}: {key} has shape {array.shape}, expected {shape}")
            pair.append(array)
        params.append(tuple(pair))
    y = data["y"]
    if spec.loss == "cross_entropy":
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(f"{where}: y is {y.dtype} {y.shape}, expected integer labels of shape ({x.shape[0]},)")
        if y.min() < 0 or y.max() >= spec.sizes[-1]:
            raise ValueError(f"{where}: labels must lie in 0..{spec.sizes[-1] - 1}, found {y.min()}..{y.max()}")
        y = y.astype(np.int64)
    else:
        if y.shape != (x.shape[0], spec.sizes[-1]) or y.dtype != x.dtype:
            raise ValueError(f"{where}: y is {y.dtype} {y.shape}, expected {dtype} ({x.shape[0]}, {spec.sizes[-1]})")
        y = _floats(data, "y", where, dtype)
    seed = None
    if "seed" in data:
        seed = _integers(data, "seed", where, scalar=True)
        if not 0 <= seed < 2**63:
            raise ValueError(f"{where}: seed {seed} is out of range; expected 0..2**63-1")
    return Case(spec, tuple(params), x, y, seed, f"from {path}", f"--case-file {shlex.quote(os.fspath(path))}")


def _read_members(path, where) -> dict:
    """Every member as an array, after checking the directory and each header."""
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        total = sum(info.file_size for info in infos)
        if total > MAX_CASE_BYTES:
            raise ValueError(f"{where}: its members decompress to {total:,} bytes, beyond the {MAX_CASE_BYTES:,}-byte "
                             "cap on case files")
        data = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{where}: member {info.filename!r} is not an array (.npy); an .npz holds arrays only")
            key = info.filename[: -len(".npy")]
            with archive.open(info) as member:
                shape, dtype = _header(member, key, where)
                needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if needed > info.file_size:
                    raise ValueError(f"{where}: {key}'s header claims shape {shape} ({needed:,} bytes), but the member "
                                     f"holds {info.file_size:,}: corrupt")
            with archive.open(info) as member:
                try:
                    data[key] = np.lib.format.read_array(member, allow_pickle=False)
                except Exception as exc:  # a bad CRC, a broken deflate stream (zlib.error), a short read
                    raise ValueError(f"{where}: member {key} is unreadable ({_kind(exc)}: {exc})") from None
    return data


def _kind(exc: BaseException) -> str:
    """``zlib.error`` rather than a bare ``error``: the exception's type with its module."""
    kind = type(exc)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _header(member, key, where):
    """``(shape, dtype)`` from a member's ``.npy`` header; refuses object arrays."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as exc:
        raise ValueError(f"{where}: member {key} has no valid .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{where}: {key} holds Python objects ({dtype}); only plain arrays are read (no pickles)")
    return shape, dtype


def _integers(data, key, where, scalar=False):
    value = data[key]
    if value.dtype.kind not in "iu" or value.ndim != (0 if scalar else 1):
        raise ValueError(f"{where}: {key} is {value.dtype} of shape {value.shape}; expected "
                         + ("an integer scalar" if scalar else "a 1-D array of integers"))
    return int(value) if scalar else tuple(int(v) for v in value)


def _names(data, key, where, one=False):
    value = data[key]
    if value.dtype.kind != "U" or value.ndim > (0 if one else 1):
        raise ValueError(f"{where}: {key} is {value.dtype} of shape {value.shape}; expected "
                         + ("a string" if one else "strings, one per layer"))
    return str(value) if one else tuple(str(a) for a in np.atleast_1d(value))


def _floats(data, key, where, dtype):
    value = data[key]
    if value.dtype.name not in DTYPES or (dtype is not None and value.dtype.name != dtype):
        raise ValueError(f"{where}: {key} is {value.dtype}; expected {dtype or ' or '.join(DTYPES)}"
                         + (" like x" if dtype else ""))
    bad = int(np.count_nonzero(~np.isfinite(value)))
    if bad:
        raise ValueError(f"{where}: {key} holds {bad} non-finite value(s) (NaN or infinity); a case must be finite")
    return value
