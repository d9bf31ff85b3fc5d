"""Files the harness writes: checked before any work, written atomically, never
replacing a file someone else wrote, and JSON that strict parsers accept.

- ``check_output_path`` runs before a run starts: the folder must exist and be
  writable, the path must not be a directory, and an existing file is replaced only
  if the harness wrote it (JSON whose first key is ``"generator": "backprop-harness
  ..."``, a case file holding ``_generator``, a PNG whose ``Software`` text chunk
  says backprop-harness); anything else is refused, naming it. The path comes back
  absolute, so a plug-in that changes the working directory cannot move it.
- ``write_atomically`` writes a temporary file in the same folder and renames it over
  the target: a reader sees the old file or the new one, never half of one, and a
  run that dies leaves no partial file.
- ``write_json`` writes ``json_safe(document)`` with ``allow_nan=False``: NaN and
  infinities become ``null`` (RFC 8259 has no literal for them).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zipfile

import numpy as np

KINDS = ("json", "npz", "png")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OURS_JSON = re.compile(rb'^\s*\{\s*"generator"\s*:\s*"backprop-harness[ "]')


def generator() -> str:
    """``backprop-harness <version>``: what the harness writes into its files."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"backprop-harness {version('backprop-harness')}"
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "backprop-harness (not installed)"


class OutputPathError(ValueError):
    """An output path that cannot or must not be written: one line naming it."""


def check_output_path(path, *, option: str, kind: str) -> str:
    """``path`` made absolute, after checking that the run can write it there (see the
    module's docstring); raises ``OutputPathError`` naming ``option`` and the path."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    text = os.fspath(path)
    if not text:
        raise OutputPathError(f"{option} '': expected a file name")
    absolute = os.path.abspath(os.path.expanduser(text))
    folder = os.path.dirname(absolute)
    if os.path.isdir(absolute):
        raise OutputPathError(f"{option} {text}: is a directory; expected a file name (e.g. {os.path.join(text, 'out.' + kind)})")
    if not os.path.isdir(folder):
        raise OutputPathError(f"{option} {text}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {text}: the folder {folder} is not writable")
    try:  # as the run's end will (write_atomically): a folder such as /sys passes os.access, not this
        handle, probe = tempfile.mkstemp(prefix=f".{os.path.basename(absolute)}.", suffix=".partial", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{option} {text}: cannot create a file in {folder}: {exc.strerror or exc}") from None
    if os.path.lexists(absolute):
        if not os.path.isfile(absolute):
            raise OutputPathError(f"{option} {text}: exists and is not a regular file; expected a file name")
        if not written_by_harness(absolute, kind):
            raise OutputPathError(f"{option} {text}: the file exists and was not written by backprop-harness; "
                                  "not replacing it (remove it or choose another name)")
    return absolute


def written_by_harness(path, kind: str) -> bool:
    """Whether the file at ``path`` carries the harness's mark for ``kind``."""
    try:
        if kind == "json":
            with open(path, "rb") as fh:
                return bool(_OURS_JSON.match(fh.read(4096)))
        if kind == "npz":
            with zipfile.ZipFile(path) as archive:
                if "_generator.npy" not in archive.namelist() or archive.getinfo("_generator.npy").file_size > 4096:
                    return False
                with archive.open("_generator.npy") as member:
                    mark = np.lib.format.read_array(member, allow_pickle=False)
            return mark.dtype.kind == "U" and str(mark).startswith("backprop-harness")
        if kind == "png":
            return _png_software(path).startswith("backprop-harness")
    except Exception:  # unreadable, corrupt, not what it claims: not ours
        return False
    raise ValueError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")


def _png_software(path) -> str:
    """The ``Software`` tEXt chunk of the PNG at ``path`` ('' if none)."""
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIGNATURE:
            return ""
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return ""
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"IDAT" or kind == b"IEND" or length > 1 << 20:
                return ""  # text before the image data is all matplotlib writes
            data = fh.read(length)
            fh.read(4)  # CRC
            if kind == b"tEXt" and data.startswith(b"Software\0"):
                return data[len(b"Software\0"):].decode("latin-1")


def write_atomically(path, write, *, binary: bool = False) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to
    ``path`` (permissions as a plain ``open`` would give). Nothing is left behind if
    ``write`` raises."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, path)
    except BaseException as exc:
        try:
            os.unlink(partial)
        except OSError:
            pass
        if isinstance(exc, OSError):  # a full disk, a file system that refuses: one line, not a traceback
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


class OutputError(ValueError):
    """An output file that could not be written (the disk is full, say): the command's
    one-line error, exit 2."""


def save_figure(fig, path, **kwargs) -> None:
    """Save a matplotlib figure as a PNG, atomically, marked as the harness's
    (``Software`` text chunk) so the next run may replace it; then close it."""
    import matplotlib.pyplot as plt

    try:
        write_atomically(path, lambda fh: fig.savefig(fh, format="png", metadata={"Software": generator()}, **kwargs),
                         binary=True)
    finally:
        plt.close(fig)


def json_safe(value):
    """``value`` with every float that JSON cannot hold (NaN, +-infinity) as ``None``,
    NumPy scalars and arrays as Python numbers and lists, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path, document: dict) -> None:
    """Write ``{"generator": ..., **document}`` as strict JSON, atomically."""
    record = {"generator": generator(), **json_safe(document)}
    write_atomically(path, lambda fh: json.dump(record, fh, indent=2, allow_nan=False))
