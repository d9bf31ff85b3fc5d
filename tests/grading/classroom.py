"""A folder of submissions as a course would collect them: correct ones (a module, a
package, a worker command), a wrong gradient, and hostile ones -- one that exits, one
that hangs, one that floods its output, one that exhausts its memory -- plus a stray
file and a name full of HTML. Each must cost only its own row."""

from __future__ import annotations

import sys
from pathlib import Path

# a learner's correct NumPy backprop: the worked example's (it exposes the plain function backprop)
CORRECT = (Path(__file__).resolve().parents[2] / "examples" / "backprop-harness-example" / "src" / "backprop_harness_example"
           / "mlp.py").read_text()
ROW = "grads[i] = (delta.T @ acts[i], delta.sum(axis=0))"
assert ROW in CORRECT, "the example changed: the wrong variants below no longer apply"
HTML_NAME = "<img src=x onerror=alert(1)>"

# name -> (source of NAME.py, the verdict its row must have, words its first failure must hold)
MODULES = {
    "correct": (CORRECT, "PASS", ""),
    "wrong_gradient": (CORRECT.replace(ROW, "grads[i] = (2 * delta.T @ acts[i], delta.sum(axis=0))"),
                       "FAIL", "gradient"),
    "crashes": ("import os\n\ndef backprop(spec, params, x, y):\n    os._exit(3)\n", "CRASHED", "exit status 3"),
    "hangs": ("def backprop(spec, params, x, y):\n    while True:\n        pass\n", "TIMEOUT", "no answer"),
    "floods": (CORRECT.replace("def backprop(spec, params, x, y):\n",
                               "def backprop(spec, params, x, y):\n    import sys\n\n"
                               "    sys.stdout.write('x' * (8 << 20))\n    sys.stderr.write('y' * (8 << 20))\n"),
               "PASS", ""),
    # 64 GiB asked for in 256 MiB pieces (reserved, not touched: under the limit in
    # seconds on a loaded machine): the address-space limit stops it
    "hogs_memory": ("import numpy as np\n\ndef backprop(spec, params, x, y):\n"
                    "    hoard = [np.empty(256 << 20, np.uint8) for _ in range(256)]\n"
                    "    return len(hoard), []\n", "ERROR", "MemoryError"),
    HTML_NAME: (CORRECT.replace(ROW, "grads[i] = (delta.T @ acts[i], 0 * delta.sum(axis=0))"), "FAIL", ""),
}


def make_classroom(folder: Path) -> dict:
    """Write the submissions into ``folder``; ``{submission: (verdict, words)}`` expected."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (source, verdict, words) in MODULES.items():
        (folder / f"{name}.py").write_text(source)
        expected[name] = (verdict, words)
    package = folder / "as_package"
    package.mkdir()
    (package / "__init__.py").write_text("from .impl import backprop  # noqa: F401\n")
    (package / "impl.py").write_text(CORRECT)
    expected["as_package"] = ("PASS", "")
    command = folder / "as_command"
    command.mkdir()
    (command / "mlp.py").write_text(CORRECT)
    (command / "worker.cmd").write_text(f"# any program that speaks the worker protocol\n"
                                        f"{sys.executable} -m harness.workers.python_worker mlp:backprop\n")
    expected["as_command"] = ("PASS", "")
    (folder / "notes.txt").write_text("not code\n")
    expected["notes.txt"] = ("ERROR", "not a submission")
    return expected


ROOT = Path(__file__).resolve().parents[2]
# one small case, short limits: each hostile submission costs seconds, not minutes
QUICK = ("--sizes", "6,5,3", "--timeout", "5", "--memory-limit", "1024")


# Dask's workers run with one BLAS thread each; a judge with more rounds its oracle's
# sums in another order (1e-17 apart: same verdicts, other digits). Comparing reports
# digit for digit takes the same settings on both sides, as here.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def harness(*argv: str, cwd: Path):
    """``python -m harness ARGV`` from this checkout, as a user runs it."""
    import os
    import subprocess

    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": str(ROOT), "COLUMNS": "250", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, env=env,
                          cwd=str(cwd), timeout=600)


def grade(folder: Path, out: Path, *options: str):
    """``backprop-harness grade FOLDER --out OUT OPTIONS``."""
    return harness("grade", str(folder), "--out", str(out), *options, cwd=out.parent)


def comparable(document: dict) -> dict:
    """A gradebook's JSON without what differs between runs of the same grid: timings,
    and where it was written from."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("seconds", "generator")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(document)
