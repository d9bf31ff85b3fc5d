"""Our checker next to torch.autograd.gradcheck on the corpus of buggy and correct
implementations in tests/corpus.py, measured in the same run.

For each implementation: does each method flag it, and how long does it take?
Small networks (53-101 parameters): ours, gradcheck default mode, gradcheck fast
mode. The seed's 784-500-10 network (397,510 parameters, batch 16): ours and
gradcheck fast mode; default mode there needs two forward passes per parameter, so
its time is estimated from one measured forward pass and it is not run.

gradcheck sees an implementation the way a user would wire NumPy code into torch: a
``torch.autograd.Function`` whose forward calls it and whose backward returns its
gradients (in double inputs for float64 implementations, float32 for float32 ones).

    python benchmarks/checker_vs_gradcheck.py [--no-seed-size]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.corpus

from harness import run_checks  # noqa: E402
from harness.core.registry import resolve  # noqa: E402
from harness.core.results import Verdict  # noqa: E402
from tests import corpus  # noqa: E402


def ours(entry, case):
    start = time.perf_counter()
    results = run_checks(entry.impl, case)
    flagged = any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in results)
    return flagged, time.perf_counter() - start


def as_torch_function(entry, case):
    import torch

    impl = resolve(entry.impl)
    prepared_spec = case.spec
    x, y = case.x, case.y

    class Step(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *flat):
            params = [(flat[i].detach().numpy(), flat[i + 1].detach().numpy()) for i in range(0, len(flat), 2)]
            prepared = impl.prepare(prepared_spec, params, dtype=case.dtype)
            result = prepared.to_numpy(prepared.step(prepared.batch(x, y)))
            ctx.grads = [np.asarray(g) for pair in result.grads for g in pair]
            return torch.tensor(float(result.loss), dtype=flat[0].dtype)

        @staticmethod
        def backward(ctx, grad_output):
            return tuple(grad_output * torch.as_tensor(g) for g in ctx.grads)

    dtype = torch.float64 if case.dtype == "float64" else torch.float32
    inputs = tuple(torch.tensor(p, dtype=dtype, requires_grad=True) for W, b in case.params for p in (W, b))
    return Step.apply, inputs


def gradcheck(entry, case, fast):
    import torch

    gradcheck_module = sys.modules["torch.autograd.gradcheck"]  # the module, not the function

    # When fast mode fails, gradcheck recomputes the full numerical Jacobian (2 forward
    # passes per parameter: hours at seed size) only to word its error message. The
    # verdict is already decided then, so that message is replaced by a placeholder.
    gradcheck_module._run_slow_mode_and_get_error = lambda *a, **k: "(slow-mode detail skipped)"
    start = time.perf_counter()
    try:
        fn, inputs = as_torch_function(entry, case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = torch.autograd.gradcheck(fn, inputs, fast_mode=fast, raise_exception=False)
        flagged = not ok
    except Exception:  # an exception in the user's face counts as flagged
        flagged = True
    return flagged, time.perf_counter() - start


def estimated_default_mode_seconds(entry, case):
    fn, inputs = as_torch_function(entry, case)
    start = time.perf_counter()
    for _ in range(3):
        fn(*inputs)
    per_forward = (time.perf_counter() - start) / 3
    n_params = sum(p.numel() for p in inputs)
    return 2 * n_params * per_forward


def summarise(rows, methods, title):
    bugs = [r for r in rows if r["bug"]]
    good = [r for r in rows if not r["bug"]]
    print(f"\n{title}")
    header = f"{'implementation':<38}" + "".join(f"{m:>18}" for m in methods)
    print(header)
    for r in rows:
        cells = "".join(f"{('FLAGGED' if r[m][0] else 'passed') + f' {r[m][1]:.2f}s':>18}" for m in methods)
        print(f"{r['name'] + (' (correct)' if not r['bug'] else ''):<38}{cells}")
    print("-" * len(header))
    for label, subset, want in (("detection rate", bugs, True), ("false-alarm rate", good, True)):
        line = "".join(f"{sum(r[m][0] == want for r in subset)}/{len(subset):<3}".rjust(18) for m in methods)
        print(f"{label:<38}{line}")
    total = "".join(f"{sum(r[m][1] for r in rows):>17.1f}s" for m in methods)
    print(f"{'total time':<38}{total}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-seed-size", action="store_true")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    entries = corpus.BUGS + corpus.CORRECT
    with threadpool_limits(1):
        rows = []
        for e in entries:
            case = e.case()
            rows.append({"name": e.name, "bug": bool(e.catches), "ours": ours(e, case),
                         "gradcheck": gradcheck(e, case, fast=False), "gradcheck fast": gradcheck(e, case, fast=True)})
        summarise(rows, ["ours", "gradcheck", "gradcheck fast"], "small networks (53-101 parameters), one thread")
        if args.no_seed_size:
            return
        seed_rows, estimates = [], []
        for e in entries:
            if e.catches and not e.also_at_seed_size:
                continue
            if isinstance(e.impl, str):  # pure-python: seconds per step at this size
                continue
            case = e.seed_case(batch=16)
            seed_rows.append({"name": e.name, "bug": bool(e.catches), "ours": ours(e, case),
                              "gradcheck fast": gradcheck(e, case, fast=True)})
            estimates.append(estimated_default_mode_seconds(e, case))
        summarise(seed_rows, ["ours", "gradcheck fast"], "seed size 784-500-10, batch 16 (397,510 parameters), one thread")
        print(f"gradcheck default mode at seed size: not run; estimated {np.median(estimates) / 60:.0f} minutes per case "
              f"(2 x 397,510 forward passes)")


if __name__ == "__main__":
    main()
