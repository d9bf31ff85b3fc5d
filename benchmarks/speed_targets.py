"""Print the speed ratios the project aims for, measured in one run on this machine.

    python benchmarks/speed_targets.py            # every target, ~2-4 minutes
    python benchmarks/speed_targets.py --quick    # fewer rounds

Not a test: on a shared 2-core machine absolute times drift, so every ratio is
taken between contenders measured in the same run, interleaved round by round
(each round times every contender once, for at least a fraction of a second); each
round gives a ratio, and the median of those is kept, so that the machine slowing
down or speeding up between rounds (other tenants) cancels out. Threads are pinned to one per pool (see
benchmarks/common.py). The script prints which BLAS kernel runs; OpenBLAS's
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set in this environment, slow current
numpy, so measure with both unset for this command alone:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/speed_targets.py

Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import MODELS, THREADS, Bound, pin_process  # noqa: E402

# Flops of one seed-model step (784-500-10), per sample: forward 2(784*500 + 500*10)
# = 794,000; weight gradients as many again; dL/da of the hidden layer 2*500*10.
SEED_STEP_FLOPS = 1_598_000


class Timings(dict):
    """Median seconds per call of each contender, and the per-round samples behind them."""

    def __init__(self, samples: dict):
        super().__init__({name: float(np.median(times)) for name, times in samples.items()})
        self.samples = samples

    def ratio(self, a: str, b: str) -> float:
        """The median over rounds of ``a``'s time over ``b``'s in the same round: a
        slow drift of the machine's speed (other tenants) cancels within a round."""
        return float(np.median(np.divide(self.samples[a], self.samples[b])))


def interleaved(contenders: dict, rounds: int, chunk: float) -> Timings:
    """Seconds per call of each callable, measured round-robin.

    The garbage collector runs between contenders, so none pays inside its timing for
    the objects another left behind (the scalar-autograd graph leaves millions); it
    stays on while a contender runs, since collecting its own garbage is part of its
    real cost (a scalar-object graph spends most of its time there).
    """
    per_call = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            gc.collect()
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= chunk:
                    break
            per_call[name].append(elapsed / calls)
    return Timings(per_call)


class Targets:
    def __init__(self):
        self.rows = []

    def ratio(self, label: str, value: float, limit: float, *, at_most: bool = True, unit: str = "x"):
        met = value <= limit if at_most else value >= limit
        self.rows.append(met)
        sign = "<=" if at_most else ">="
        print(f"  {'MET ' if met else 'MISS'}  {label:<58} {value:8.3f}{unit}  (target {sign} {limit:g}{unit})", flush=True)


def blas_description() -> str:
    from threadpoolctl import threadpool_info

    parts = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture') or ''} threads={i.get('num_threads')}"
             for i in threadpool_info()]
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return "; ".join(parts) + (f"; env {env}" if env else "; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset")


def first_layer_products(batch: int, dtype: str, library: str = "numpy"):
    """The seed step's two big products, (N, 784) x (784, 500) forward and the
    (500, N) x (N, 784) weight gradient, as plain matmuls into buffers: the part of a
    step no dense implementation avoids (dL/dx is computed only on request). In numpy
    (OpenBLAS) or torch (MKL)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, 784)).astype(dtype)
    w = rng.standard_normal((500, 784)).astype(dtype)
    delta = rng.standard_normal((batch, 500)).astype(dtype)
    out, d_w = np.empty((batch, 500), dtype), np.empty((500, 784), dtype)
    if library == "torch":
        import torch

        a, w, delta, out, d_w = map(torch.from_numpy, (a, w, delta, out, d_w))

        def products():
            torch.mm(a, w.T, out=out)
            torch.mm(delta.T, a, out=d_w)

        return products

    def products():  # np.dot as the numpy step does: matmul's outer product at N = 1 skips BLAS
        np.matmul(a, w.T, out=out)
        np.dot(delta.T, a, out=d_w)

    return products


def numpy_against_torch(targets, rounds, chunk):
    print("numpy against torch eager, seed model 784-500-10, one step = forward + loss + backward;")
    print("floor: numpy's two first-layer matmuls alone (OpenBLAS) / torch's whole step;")
    print("blas: those two matmuls in numpy (OpenBLAS) / the same two in torch (MKL):")
    for dtype in ("float32", "float64"):
        for batch in (1, 64, 256):
            bound = {name: Bound(name, "seed", batch, dtype) for name in ("numpy", "torch")}
            contenders = {name: b.step for name, b in bound.items()}
            contenders["floor"] = first_layer_products(batch, dtype)
            contenders["mkl"] = first_layer_products(batch, dtype, "torch")
            t = interleaved(contenders, rounds, chunk)
            limit = 1.0 if batch == 1 else 0.8
            targets.ratio(f"numpy / torch  {dtype} batch {batch:<3} ({t['numpy'] * 1e3:.3g} ms vs {t['torch'] * 1e3:.3g} ms, "
                          f"floor {t.ratio('floor', 'torch'):.2f}, blas {t.ratio('floor', 'mkl'):.2f})", t.ratio("numpy", "torch"), limit)


def numpy_roofline(targets, rounds, chunk):
    batch = 256
    print(f"numpy float32 batch {batch} against the matmul roofline (sgemm measured in this run):")
    step = Bound("numpy", "seed", batch, "float32")
    rng = np.random.default_rng(0)
    # The step's largest product, (N, 784) x (784, 500), as a plain sgemm into a buffer.
    a = rng.standard_normal((batch, 784), dtype=np.float32)
    w = rng.standard_normal((500, 784), dtype=np.float32)
    out = np.empty((batch, 500), np.float32)

    t = interleaved({"step": step.step, "sgemm": lambda: np.matmul(a, w.T, out=out),
                     "matmuls": first_layer_products(batch, "float32")}, rounds, chunk)
    roofline = 2 * batch * 784 * 500 / t["sgemm"]
    achieved = SEED_STEP_FLOPS * batch / t["step"]
    print(f"  sgemm {roofline / 1e9:.1f} GFLOP/s; step {t['step'] * 1e3:.3g} ms = {achieved / 1e9:.1f} GFLOP/s at 1,598,000 x N flops")
    print(f"  the first layer's two matmuls alone take {t['matmuls'] * 1e3:.3g} ms: "
          f"{100 * t.ratio('matmuls', 'step'):.0f} % of the step")
    # achieved / roofline, from the per-round ratio of the two times
    share = SEED_STEP_FLOPS / (2 * 784 * 500) * t.ratio("sgemm", "step")
    targets.ratio("step at 1,598,000 x N flops / sgemm rate", 100 * share, 85, at_most=False, unit="%")


def pure_python(targets, rounds, chunk):
    batch = 16
    spec = MODELS["small"]
    print(f"pure Python, small model {'-'.join(map(str, spec.sizes))} float64 batch {batch}:")
    # Past the asv suite's timeout budget (batch 16 is ~1 s a step for the scalar graph).
    bound = {name: Bound(name, "small", batch, "float64", budget=False)
             for name in ("numpy", "pure-python", "scalar-autograd")}
    t = interleaved({name: b.step for name, b in bound.items()}, max(3, rounds // 2), chunk)
    targets.ratio(f"pure-python / numpy ({t['pure-python'] * 1e3:.3g} ms vs {t['numpy'] * 1e6:.3g} us)",
                  t.ratio("pure-python", "numpy"), 40)
    targets.ratio(f"scalar-autograd / pure-python ({t['scalar-autograd'] * 1e3:.4g} ms)",
                  t.ratio("scalar-autograd", "pure-python"), 100, at_most=False)


def compiled_against_eager(targets, rounds, chunk):
    print("torch-compile against torch eager on the CPU, seed model:")
    for dtype in ("float32", "float64"):
        for batch in (64, 256):
            bound = {name: Bound(name, "seed", batch, dtype) for name in ("torch-compile", "torch")}
            t = interleaved({name: b.step for name, b in bound.items()}, rounds, chunk)
            targets.ratio(f"torch-compile / torch  {dtype} batch {batch}", t.ratio("torch-compile", "torch"), 1.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="7 rounds of 0.08 s instead of 15 of 0.12 s")
    parser.add_argument("--only", choices=["numpy", "roofline", "pure-python", "compile"], action="append")
    args = parser.parse_args(argv)
    rounds, chunk = (7, 0.08) if args.quick else (15, 0.12)
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401  (import before pinning so its pools are pinned too)
    pin_process()
    print(f"threads per pool: {THREADS}; BLAS: {blas_description()}")
    print(f"rounds: {rounds} x {chunk} s per contender, interleaved; per-round ratios, their median kept\n", flush=True)
    targets = Targets()
    sections = {"numpy": numpy_against_torch, "roofline": numpy_roofline, "pure-python": pure_python,
                "compile": compiled_against_eager}
    for name in args.only or sections:
        sections[name](targets, rounds, chunk)
    print(f"\n{sum(targets.rows)} of {len(targets.rows)} targets met")
    return 0 if all(targets.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
