"""Running an implementation's checks in a child interpreter, with a time limit.

An implementation that raises is reported as ERROR, one that runs past the limit as
TIMEOUT, and one that kills its interpreter (``os._exit``, a segfault, the OOM
killer) as CRASHED; the caller's process is untouched and goes on with the others.

The child gets the implementation by the text that names it (a registered name or
``"module:attr"``) and the case as a ``.npz`` (``save_case``), never a pickled
object, so nothing of the parent's state travels with it. It runs
``python -m harness.checks.isolation`` and writes its results as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time

from harness.core.case_files import load_case, save_case
from harness.core.cases import Case
from harness.core.results import CheckResult, Coordinate, TensorReport, Verdict

DEFAULT_TIMEOUT = 300.0
_STDERR_SHOWN = 2000  # characters of a crashed child's stderr kept in the report


def reference_for(impl) -> str:
    """The text a child interpreter resolves back to ``impl``: a string is kept; a
    registered implementation is named; a function or class by ``module:qualname``."""
    if isinstance(impl, str):
        return impl
    from harness.core.registry import implementations

    name = getattr(impl, "name", "")
    if name and implementations().get(name) is impl:
        return name
    inner = getattr(impl, "function", None) or getattr(impl, "inner", None) or impl
    target = inner if callable(inner) and hasattr(inner, "__qualname__") else type(inner)
    module, qualname = getattr(target, "__module__", ""), getattr(target, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise ValueError(
            f"{impl!r}: an isolated run needs an implementation the child interpreter can import: "
            f"give its registered name or module:attr (got one defined in {module or 'no module'}:{qualname})"
        )
    return f"{module}:{qualname}"


def _child_environment() -> dict:
    # The child must import whatever the parent could (a module given as module:attr
    # from the current directory or a test folder), so it gets the parent's sys.path.
    env = dict(os.environ)
    paths = [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if os.path.isdir(p)))
    return env


def run_checks_isolated(
    impl,
    case: Case,
    *,
    device: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    probes: int = 4,
    probe_seed: int = 0,
    checks=None,
    strict_determinism: bool = False,
) -> list[CheckResult]:
    """``run_checks`` in a child interpreter. ``checks`` are check names (default all).

    Returns the child's results, or one ERROR / TIMEOUT / CRASHED result when the
    child gave none. The child's standard output is discarded and only the end of its
    standard error kept, so a plug-in that floods either costs no memory here."""
    if not (isinstance(timeout, (int, float)) and 0 < timeout <= 86400):
        raise ValueError(f"timeout={timeout!r}: expected a positive number of seconds, at most a day")
    ref = reference_for(impl)
    name = getattr(impl, "name", "") or ref
    with tempfile.TemporaryDirectory(prefix="backprop-harness-") as workdir:
        case_file = os.path.join(workdir, "case.npz")
        out_file = os.path.join(workdir, "results.json")
        save_case(case, case_file)
        command = [
            sys.executable, "-m", "harness.checks.isolation",
            "--impl", ref, "--case-file", case_file, "--out", out_file,
            "--probes", str(probes), "--probe-seed", str(probe_seed),
            "--recipe", case.recipe, "--label", case.label,
        ]
        if case.seed is not None:
            command += ["--seed", str(case.seed)]
        if device:
            command += ["--device", device]
        if strict_determinism:
            command += ["--strict-determinism"]
        for check in checks or ():
            command += ["--check", check]
        start = time.perf_counter()
        err_file = os.path.join(workdir, "stderr")
        # A session of its own, so a timeout kills whatever the child started too.
        with open(err_file, "wb") as err:
            child = subprocess.Popen(command, env=_child_environment(), stdout=subprocess.DEVNULL, stderr=err,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_session(child)
                child.wait()
                return [_outcome(name, ref, case, device, Verdict.TIMEOUT,
                                 f"no answer within {timeout:g} s; the child interpreter was killed", time.perf_counter() - start)]
        seconds = time.perf_counter() - start
        stderr_text = _tail(err_file)
        if child.returncode == 0 and os.path.exists(out_file):
            with open(out_file) as fh:
                return [_result_from_dict(d) for d in json.load(fh)]
        tail = f"; stderr: {stderr_text[-_STDERR_SHOWN:]}" if stderr_text else ""
        if child.returncode == _EXIT_RESOLVE:
            return [_outcome(name, ref, case, device, Verdict.ERROR, f"the child could not load the implementation{tail}", seconds)]
        return [_outcome(name, ref, case, device, Verdict.CRASHED, f"the interpreter died: {_death(child.returncode)}{tail}", seconds)]


def _tail(path) -> str:
    """The last ``_STDERR_SHOWN`` characters of the file at ``path``, stripped."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.path.getsize(path) - 4 * _STDERR_SHOWN))
        return fh.read().decode(errors="replace").strip()


def _kill_session(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode} without results (os._exit or sys.exit inside the implementation?)"


def _outcome(name, ref, case, device, verdict, message, seconds) -> CheckResult:
    where = case.recipe or "--case-file CASE.npz"
    repro = f"backprop-harness check --impl {shlex.quote(ref)} {where}{f' --device {shlex.quote(device)}' if device else ''} --isolate"
    return CheckResult(check="isolated", impl=name, case=case.describe(), verdict=verdict, message=message,
                       seed=case.seed, repro=repro, seconds=seconds)


def _result_from_dict(d: dict) -> CheckResult:
    tensors = []
    for t in d.get("tensors", []):
        worst = [Coordinate(tuple(c["index"]), c["got"], c["expected"], c["tolerance"],
                            tuple(c["bracket"]) if c.get("bracket") else None) for c in t.get("worst", [])]
        tensors.append(TensorReport(**{**t, "verdict": Verdict(t["verdict"]), "worst": worst}))
    return CheckResult(**{**d, "verdict": Verdict(d["verdict"]), "tensors": tensors})


# --- the child -----------------------------------------------------------------

_EXIT_RESOLVE = 3  # the implementation could not be imported or resolved


def _child(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.checks.isolation", description="run checks for an isolated parent")
    parser.add_argument("--impl", required=True)
    parser.add_argument("--case-file", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device")
    parser.add_argument("--probes", type=int, default=4)
    parser.add_argument("--probe-seed", type=int, default=0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--recipe", default="")
    parser.add_argument("--label", default="")
    parser.add_argument("--check", action="append", default=[])
    parser.add_argument("--strict-determinism", action="store_true")
    args = parser.parse_args(argv)

    from harness.checks.runner import ALL_CHECKS, check_name, run_checks
    from harness.core.registry import resolve

    try:
        impl = resolve(args.impl)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return _EXIT_RESOLVE
    loaded = load_case(args.case_file)
    case = Case(loaded.spec, loaded.params, loaded.x, loaded.y, args.seed, args.label, args.recipe)
    checks = ALL_CHECKS
    if args.check:
        unknown = sorted(set(args.check) - {check_name(c) for c in ALL_CHECKS})
        if unknown:
            print(f"unknown check(s) {', '.join(unknown)}", file=sys.stderr)
            return _EXIT_RESOLVE
        checks = [c for c in ALL_CHECKS if check_name(c) in args.check]
    results = run_checks(impl, case, device=args.device, checks=checks, probes=args.probes, probe_seed=args.probe_seed,
                         strict_determinism=args.strict_determinism)
    partial = args.out + ".partial"
    with open(partial, "w") as fh:
        json.dump([r.to_dict() for r in results], fh, default=float)
    os.replace(partial, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
