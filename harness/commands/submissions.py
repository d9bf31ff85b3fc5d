"""The submissions in a folder, for ``backprop-harness grade``: each entry is one.

- ``NAME.py``: a module exposing the plain function ``f(spec, params, x, y) -> (loss,
  grads)`` or a class, under the attribute ``--entry`` names (default ``backprop``);
- ``NAME/`` with ``__init__.py``: a package exposing it the same way;
- ``NAME/`` with ``worker.cmd``: any program speaking the worker protocol; the file's
  first line that is not blank or a ``#`` comment is its command line, run in a copy
  of the folder (``node mlp_worker.js``, ``./mlp-worker``).

Hidden entries and ``__pycache__`` are not submissions; anything else is a row of its
own saying what was expected, so no learner silently goes missing. Each submission
travels as its files' bytes (``WorkerSpec.files``) and is never run in, or written
into, the folder it came from.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.commands.errors import UsageError
from harness.executors.tasks import COMMAND, PYTHON, WorkerSpec

COMMAND_FILE = "worker.cmd"
MAX_BYTES = 64 << 20  # one submission's files: a course's code, not its data
EXPECTED = f"NAME.py, a package (a folder with __init__.py) or a folder with {COMMAND_FILE}"
# names a submission's module must not take: its worker imports these itself
_SHADOWED = {"harness", "numpy", "rich", "torch"} | set(sys.stdlib_module_names)


@dataclass
class Submission:
    name: str  # the entry's name in the folder
    kind: str  # "module", "package", "command", or "invalid"
    worker: WorkerSpec | None = None
    problem: str = ""  # why it is not a submission (kind "invalid")


def discover(folder: str, entry: str) -> list[Submission]:
    """Every submission in ``folder``, sorted by name; a bad or empty folder is a
    ``UsageError`` (one line, exit 2)."""
    root = Path(folder)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise UsageError(f"grade {folder}: {what}; expected a folder of submissions, each {EXPECTED}")
    try:
        entries = sorted(p for p in root.iterdir() if not p.name.startswith(".") and p.name != "__pycache__")
    except OSError as exc:
        raise UsageError(f"grade {folder}: cannot list it: {exc.strerror or exc}") from None
    if not entries:
        raise UsageError(f"grade {folder}: no submissions in it; expected {EXPECTED}")
    if not entry.isidentifier():
        raise UsageError(f"--entry {entry!r}: expected a Python attribute name, such as backprop")
    found = [(path, _submission(path, entry)) for path in entries]
    # alice.py and alice/ are both "alice": graded under one name, one's result would be
    # shown for both (a wrong one PASSing as its namesake); neither is graded
    names = Counter(s.name for _, s in found)
    return [(s if names[s.name] == 1 else Submission(
        s.name, "invalid", problem=f"{names[s.name]} submissions are named {s.name!r} "
                                   f"({', '.join(p.name for p, t in found if t.name == s.name)}): rename all but one"))
            for _, s in found]


def _submission(path: Path, entry: str) -> Submission:
    try:
        if path.is_file() and path.suffix == ".py":
            module = _module_name(path.stem)
            files = {f"{module}.py": path.read_bytes()}
            return _python(path.stem, "module", module, entry, files)
        if path.is_dir() and (path / COMMAND_FILE).is_file():
            files, executables = _files(path, "")
            command = _command_line(files[COMMAND_FILE])
            if not command:
                return Submission(path.name, "invalid", problem=f"{COMMAND_FILE} holds no command line")
            try:
                shlex.split(command)
            except ValueError as exc:
                return Submission(path.name, "invalid", problem=f"{COMMAND_FILE}: {command!r}: {exc}")
            return Submission(path.name, "command",
                              WorkerSpec(COMMAND, command, files, label=f"cmd:{command}", executables=executables))
        if path.is_dir() and (path / "__init__.py").is_file():
            package = _module_name(path.name)
            files, _ = _files(path, package)
            return _python(path.name, "package", package, entry, files)
    except _TooLarge as exc:
        return Submission(path.name, "invalid", problem=str(exc))
    except OSError as exc:
        return Submission(path.name, "invalid", problem=f"cannot read it: {exc.strerror or exc}")
    return Submission(path.name, "invalid", problem=f"not a submission: expected {EXPECTED}")


def _python(name: str, kind: str, module: str, entry: str, files: dict) -> Submission:
    target = f"{module}:{entry}"
    return Submission(name, kind, WorkerSpec(PYTHON, target, files, label=target))


def _module_name(stem: str) -> str:
    """The stem, when it can be imported as itself without hiding a module the worker
    needs; ``submission`` otherwise."""
    return stem if stem.isidentifier() and stem not in _SHADOWED else "submission"


class _TooLarge(ValueError):
    pass


def _files(folder: Path, prefix: str) -> tuple[dict, tuple]:
    """Every file under ``folder`` (no caches, no links out of it) as bytes, under
    ``prefix``, and which of them are executable."""
    files, executables, total = {}, [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.is_symlink() or not path.is_file() or filename.endswith(".pyc"):
                continue
            total += path.stat().st_size
            if total > MAX_BYTES:
                raise _TooLarge(f"its files exceed {MAX_BYTES >> 20} MiB; a submission is code, not data")
            relative = str(Path(prefix, path.relative_to(folder))) if prefix else str(path.relative_to(folder))
            files[relative] = path.read_bytes()
            if os.access(path, os.X_OK):
                executables.append(relative)
    return files, tuple(executables)


def _command_line(data: bytes) -> str:
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""
