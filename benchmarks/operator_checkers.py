"""Our checker next to torch.autograd.gradcheck (full and fast mode) and JAX's check_grads
on the operator corpus in tests/operator_corpus, measured in one run.

For each entry (a buggy or a correct operator): is it flagged, and in how many seconds?
Each tool sees the NumPy operator the way a user would wire it in:
- gradcheck: a ``torch.autograd.Function`` whose forward calls the NumPy forward and whose
  backward calls the NumPy VJP; integer inputs are passed as integer tensors. Run in
  float64, as gradcheck asks, and in the entry's own dtype, as the user would run it
  (the two coincide for float64 entries). When fast mode fails it would recompute the
  dense Jacobian only to word its message; the verdict is decided by then, so that
  rerun is replaced by a placeholder (as in checker_vs_gradcheck.py).
- check_grads (order 1, reverse mode): ``jax.custom_vjp`` whose forward and backward are
  ``jax.pure_callback`` calls of the NumPy functions; integer inputs closed over. Where the
  operator has a JVP, forward mode too (a ``jax.custom_jvp`` calling it), and gradcheck
  with ``check_forward_ad=True`` (the Function's ``jvp``): each peer checks what it can.
- ours: ``harness.check(entry.mapping())`` -- "not yet" while harness.Mapping is absent.
An entry is flagged when any of its sample cases fails the check; a tool that raises on
a case (a shape the framework refuses, a read-only buffer written to) also counts as
flagging it, marked with "!". A correct entry flagged is a false alarm.

A second section runs a few operators at ~10^5 input elements: gradcheck in a child
process capped at 4 GiB of address space (resource.setrlimit), reported as "no verdict
(memory)" when its dense Jacobian does not fit, and check_grads in this process.

    python benchmarks/operator_checkers.py [--only NAME ...] [--no-large] [--cap-gib 4]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.operator_corpus

from tests.operator_corpus.entries import BUGS, CORRECT  # noqa: E402
from tests.operator_corpus.operator import as_dtype  # noqa: E402

TOOLS = ("ours", "gc-full64", "gc-full", "gc-fast64", "gc-fast", "jax64", "jax")
TOOL_TITLES = {"ours": "harness.check", "gc-full64": "gradcheck full, float64", "gc-full": "gradcheck full, as run",
               "gc-fast64": "gradcheck fast, float64", "gc-fast": "gradcheck fast, as run",
               "jax64": "check_grads, float64", "jax": "check_grads, as run"}


@dataclass
class Outcome:
    flagged: bool | None  # None: no verdict
    seconds: float = 0.0
    raised: bool = False  # flagged by an exception, not by the tool's verdict
    note: str = ""


def is_int(x) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.integer)


def first_output(y):
    return y[0] if isinstance(y, tuple) else y


# --- torch.autograd.gradcheck ------------------------------------------------------------------


def torch_function(operator, params):
    import torch

    class NumpyOperator(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            arrays = [t.detach().numpy() for t in tensors]
            ctx.arrays = arrays
            return torch.from_numpy(np.array(first_output(operator.forward(*arrays, **params))))

        @staticmethod
        def backward(ctx, g):
            grads = operator.vjp(tuple(ctx.arrays), (g.detach().numpy(),), **params)
            # np.array copies: torch.from_numpy refuses the negative strides of a flipped view
            return tuple(None if gr is None else torch.from_numpy(np.array(gr)) for gr in grads)

        @staticmethod
        def jvp(ctx, *tangents):  # forward-mode AD, checked when the operator has a JVP
            ts = tuple(None if t is None else t.detach().numpy() for t in tangents)
            return torch.from_numpy(np.array(first_output(operator.jvp(tuple(ctx.arrays), ts, **params))))

    return NumpyOperator.apply


def gradcheck_case(operator, xs, params, fast: bool) -> Outcome:
    import torch
    from torch.autograd.gradcheck import GradcheckError

    sys.modules["torch.autograd.gradcheck"]._run_slow_mode_and_get_error = lambda *a, **k: "(slow-mode detail skipped)"
    tensors = [torch.tensor(np.array(x)) if is_int(x) else torch.tensor(np.array(x), requires_grad=True) for x in xs]
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            torch.autograd.gradcheck(torch_function(operator, params), tuple(tensors), fast_mode=fast,
                                     check_forward_ad=operator.jvp is not None)
        return Outcome(False, time.perf_counter() - start)
    except GradcheckError:
        return Outcome(True, time.perf_counter() - start)
    except MemoryError as error:
        return Outcome(None, time.perf_counter() - start, note=f"memory: {error}")
    except RuntimeError as error:
        if "alloc" in str(error).lower() or "memory" in str(error).lower():
            return Outcome(None, time.perf_counter() - start, note="memory")
        return Outcome(True, time.perf_counter() - start, raised=True, note=str(error).splitlines()[0])
    except Exception as error:  # noqa: BLE001 -- an exception in the user's face counts as flagging
        return Outcome(True, time.perf_counter() - start, raised=True, note=str(error).splitlines()[0][:200])


# --- jax.test_util.check_grads ----------------------------------------------------------------


def jax_case(operator, xs, params) -> Outcome:
    import jax
    from jax.test_util import check_grads

    float_at = [i for i, x in enumerate(xs) if not is_int(x)]

    def assemble(floats):
        full = list(xs)
        for i, f in zip(float_at, floats):
            full[i] = np.asarray(f)
        return full

    with np.errstate(all="ignore"):
        y = np.asarray(first_output(operator.forward(*[np.array(x) for x in xs], **params)))
    out_type = jax.ShapeDtypeStruct(y.shape, y.dtype)

    def numpy_forward(*floats):
        return np.asarray(first_output(operator.forward(*assemble(floats), **params)))

    def numpy_vjp(g, *floats):
        grads = operator.vjp(tuple(assemble(floats)), (np.asarray(g),), **params)
        return tuple(np.asarray(grads[i]) for i in float_at)

    @jax.custom_vjp
    def f(*floats):
        return jax.pure_callback(numpy_forward, out_type, *floats)

    def f_fwd(*floats):
        return f(*floats), floats

    def f_bwd(floats, g):
        types = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in floats)
        return jax.pure_callback(numpy_vjp, types, g, *floats)

    f.defvjp(f_fwd, f_bwd)
    checks = [(f, "rev")]
    if operator.jvp is not None:  # forward mode too, through a custom_jvp of the NumPy JVP
        def numpy_jvp(*primals_and_tangents):
            n = len(float_at)
            tangents = [None] * len(xs)
            for i, t in zip(float_at, primals_and_tangents[n:]):
                tangents[i] = np.asarray(t)
            return np.asarray(first_output(operator.jvp(tuple(assemble(primals_and_tangents[:n])), tuple(tangents),
                                                        **params)))

        @jax.custom_jvp
        def f_forward_mode(*floats):
            return jax.pure_callback(numpy_forward, out_type, *floats)

        @f_forward_mode.defjvp
        def _(primals, tangents):
            return f_forward_mode(*primals), jax.pure_callback(numpy_jvp, out_type, *primals, *tangents)

        checks.append((f_forward_mode, "fwd"))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for function, mode in checks:
                check_grads(function, tuple(xs[i] for i in float_at), order=1, modes=[mode])
        return Outcome(False, time.perf_counter() - start)
    except AssertionError:
        return Outcome(True, time.perf_counter() - start)
    except Exception as error:  # noqa: BLE001 -- an exception in the user's face counts as flagging
        return Outcome(True, time.perf_counter() - start, raised=True, note=str(error).splitlines()[0][:200])


# --- ours -------------------------------------------------------------------------------------


def engine_present() -> bool:
    import harness

    return hasattr(harness, "Mapping")


def ours(entry, samples=None) -> Outcome:
    import harness
    from tests.operator_corpus.operator import mapping

    start = time.perf_counter()
    try:
        results = harness.check(mapping(entry.fresh(), entry.dtype, samples), dtype=entry.dtype)
    except Exception as error:  # noqa: BLE001 -- our own failure is reported, not hidden
        return Outcome(None, time.perf_counter() - start, note=f"harness.check raised {error!r}")
    failed = sorted({r.check for r in results if not r.verdict.ok})
    return Outcome(bool(failed), time.perf_counter() - start, note=",".join(failed))


# --- one entry, every tool ----------------------------------------------------------------------


def over_cases(run_one, entry, dtype) -> Outcome:
    """``run_one(operator, xs, params)`` on every sample case in ``dtype``: flagged if any case is."""
    total, outcomes = 0.0, []
    for xs, params, _ in entry.cases():
        outcome = run_one(entry.fresh(), as_dtype(xs, np.dtype(dtype)), params)
        total += outcome.seconds
        outcomes.append(outcome)
    flagged = [o for o in outcomes if o.flagged]
    if flagged:
        return Outcome(True, total, raised=all(o.raised for o in flagged), note=flagged[0].note)
    return Outcome(None if any(o.flagged is None for o in outcomes) else False, total)


def run_entry(entry, with_ours: bool) -> dict[str, Outcome]:
    row = {"ours": ours(entry) if with_ours else Outcome(None, note="not yet")}
    for fast, name in ((False, "gc-full"), (True, "gc-fast")):
        row[name + "64"] = over_cases(lambda op, xs, p, fast=fast: gradcheck_case(op, xs, p, fast), entry, "float64")
        row[name] = row[name + "64"] if entry.dtype == "float64" else over_cases(
            lambda op, xs, p, fast=fast: gradcheck_case(op, xs, p, fast), entry, entry.dtype)
    row["jax64"] = over_cases(jax_case, entry, "float64")
    row["jax"] = row["jax64"] if entry.dtype == "float64" else over_cases(jax_case, entry, entry.dtype)
    return row


def cell(outcome: Outcome, bug: bool) -> str:
    if outcome.flagged is None:
        return outcome.note if outcome.note == "not yet" else "no verdict"
    word = ("caught" if outcome.flagged else "MISSED") if bug else ("FALSE ALARM" if outcome.flagged else "ok")
    return f"{word}{'!' if outcome.raised else ''} {outcome.seconds:.2f}s"


def print_table(entries, rows, title):
    print(f"\n{title}")
    print("  " + "; ".join(f"{t} = {TOOL_TITLES[t]}" for t in TOOLS))
    print("  'as run' = in the entry's own dtype; '!' = flagged by raising an error, not by a verdict")
    header = f"{'entry':<42}{'kind':<8}" + "".join(f"{t:>19}" for t in TOOLS)
    print(header)
    for entry, row in zip(entries, rows):
        kind = "bug" if entry.is_bug else "correct"
        print(f"{entry.name:<42}{kind:<8}" + "".join(f"{cell(row[t], entry.is_bug):>19}" for t in TOOLS))
    print("-" * len(header))
    bugs = [r for e, r in zip(entries, rows) if e.is_bug]
    good = [r for e, r in zip(entries, rows) if not e.is_bug]
    lines = {
        f"bugs caught (of {len(bugs)})": [sum(bool(r[t].flagged) for r in bugs) for t in TOOLS],
        "  of which by raising": [sum(bool(r[t].flagged and r[t].raised) for r in bugs) for t in TOOLS],
        f"false alarms (of {len(good)})": [sum(bool(r[t].flagged) for r in good) for t in TOOLS],
        "no verdict": [sum(r[t].flagged is None for r in rows) for t in TOOLS],
    }
    for label, counts in lines.items():
        print(f"{label:<50}" + "".join(f"{c:>19}" for c in counts))
    print(f"{'time (s)':<50}" + "".join(f"{sum(r[t].seconds for r in rows):>19.1f}" for t in TOOLS))


# --- ~10^5 input elements ---------------------------------------------------------------------

LARGE = {  # entry name -> (inputs built from rng and dtype, params)
    "relu": (lambda rng, d: (rng.standard_normal((100, 1000)).astype(d),), {}),
    "ReluGradientNotMultiplied": (lambda rng, d: (rng.standard_normal((100, 1000)).astype(d),), {}),
    "gelu[float32]": (lambda rng, d: (rng.standard_normal((100, 1000)).astype(d),), {}),
    "GeluTanhDerivative[float32]": (lambda rng, d: (2 * rng.standard_normal((100, 1000)).astype(d),), {}),
    "softmax": (lambda rng, d: (rng.standard_normal((320, 320)).astype(d),), {"axis": -1}),
    "SoftmaxDiagonalOnly": (lambda rng, d: (rng.standard_normal((320, 320)).astype(d),), {"axis": -1}),
    "layer_norm[float32]": (lambda rng, d: (rng.standard_normal((1000, 100)).astype(d),
                                            (1 + 0.5 * rng.standard_normal(100)).astype(d),
                                            rng.standard_normal(100).astype(d)), {"eps": 1e-5}),
    "LayerNormStatisticsConstant": (lambda rng, d: (rng.standard_normal((1000, 100)).astype(d),
                                                    (1 + 0.5 * rng.standard_normal(100)).astype(d),
                                                    rng.standard_normal(100).astype(d)), {"eps": 1e-5}),
}


def entry_named(name):
    return next(e for e in BUGS + CORRECT if e.name == name)


def capped_gradcheck(name, fast, cap_bytes, conn):
    """In a child: cap the address space, run gradcheck on the large case, send the Outcome."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    import torch

    torch.set_num_threads(1)
    entry = entry_named(name)
    build, params = LARGE[name]
    xs = as_dtype(build(np.random.default_rng(0), np.dtype(entry.dtype)), np.float64)
    conn.send(gradcheck_case(entry.fresh(), xs, params, fast))


def run_capped(name, fast, cap_bytes, timeout=90.0) -> Outcome:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=capped_gradcheck, args=(name, fast, cap_bytes, child))
    start = time.perf_counter()
    process.start()
    child.close()
    outcome = parent.recv() if parent.poll(timeout) else None
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join()
        return Outcome(None, time.perf_counter() - start, note=f"no verdict (time, > {timeout:.0f}s)")
    if outcome is None:
        return Outcome(None, time.perf_counter() - start, note=f"no verdict (memory: child died, exit {process.exitcode})")
    if outcome.flagged is None:
        outcome.note = "no verdict (memory)"
    return outcome


def large_section(cap_gib: float, with_ours: bool):
    print(f"\n~10^5 input elements: gradcheck (float64, as it asks) in a child capped at {cap_gib:g} GiB; "
          "check_grads in the entry's own dtype")
    header = f"{'entry':<34}{'kind':<8}{'inputs':>9}{'ours':>20}{'gradcheck full':>30}{'gradcheck fast':>22}{'check_grads':>20}"
    print(header)
    cap = int(cap_gib * 2**30)
    for name, (build, params) in LARGE.items():
        entry = entry_named(name)
        xs = build(np.random.default_rng(0), np.dtype(entry.dtype))
        full, fast = run_capped(name, False, cap), run_capped(name, True, cap)
        jax_outcome = jax_case(entry.fresh(), xs, params)
        ours_outcome = ours(entry, lambda rng, dtype, xs=xs, params=params: [(xs, params, "~10^5 elements")]) if with_ours else (
            Outcome(None, note="not yet"))
        ours_cell = cell(ours_outcome, entry.is_bug)
        cells = [cell(o, entry.is_bug) if o.flagged is not None else f"{o.note} {o.seconds:.0f}s" for o in (full, fast)]
        print(f"{name:<34}{'bug' if entry.is_bug else 'correct':<8}{sum(x.size for x in xs):>9}{ours_cell:>20}"
              f"{cells[0]:>30}{cells[1]:>22}{cell(jax_outcome, entry.is_bug):>20}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="entry names to run (default: all)")
    parser.add_argument("--no-large", action="store_true", help="skip the ~10^5-element section")
    parser.add_argument("--large-only", action="store_true", help="only the ~10^5-element section")
    parser.add_argument("--cap-gib", type=float, default=4.0, help="gradcheck's memory cap in the large section")
    args = parser.parse_args(argv)
    import jax
    import torch
    from threadpoolctl import threadpool_limits

    jax.config.update("jax_enable_x64", True)
    logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)  # a raising callback: counted, not printed
    torch.set_num_threads(1)
    with_ours = engine_present()
    entries = [e for e in BUGS + CORRECT if not args.only or e.name in args.only]
    print(f"operator corpus: {sum(e.is_bug for e in entries)} bugs, {sum(not e.is_bug for e in entries)} correct "
          f"entries; torch {torch.__version__}, jax {jax.__version__}; ours: "
          + ("harness.check" if with_ours else "not yet (harness.Mapping is not in this branch)"))
    start = time.perf_counter()
    with threadpool_limits(1):
        if not args.large_only:
            rows = [run_entry(e, with_ours) for e in entries]
            print_table(entries, rows, "small inputs (the entries' own sample cases), one thread")
        if not args.no_large:
            large_section(args.cap_gib, with_ours)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
