"""The default ``train`` run on digits, timed: does each implementation reach 95% test
accuracy, how long does it take, and how far do float32/float64 trajectories of
different libraries drift apart (the calibration of the trajectory tolerance)?

    python benchmarks/train_digits.py [--impl numpy --impl torch] [--seeds 0,1,2]

Not an asv benchmark (no ``time_*``): a script that prints what it measured. Threads
are pinned to one per pool, as ``train`` does by default.
"""

from __future__ import annotations

import argparse
import math
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", action="append", help="default: numpy and torch")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--dtypes", default="float64,float32")
    args = parser.parse_args(argv)

    import numpy as np
    from threadpoolctl import threadpool_limits

    from harness.core.registry import resolve
    from harness.core.spec import NetworkSpec
    from harness.training.datasets import load_digits
    from harness.training.loop import TrainConfig, train_and_compare
    from harness.training.trajectory import TRAJECTORY_FACTOR

    names = args.impl or ["numpy", "torch"]
    impls = [resolve(n) for n in names]
    if any(i.name.startswith("torch") for i in impls):
        import torch

        torch.set_num_threads(1)
    ok = True
    print(f"{'seed':>4} {'dtype':8} {'impl':22} {'test acc':>8} {'train s':>8} {'wall s':>7} {'diverg.':>9} {'/(eps*sqrt(T))':>14}")
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        data = load_digits(seed=seed)
        load_seconds = time.perf_counter() - started
        spec = NetworkSpec((data.n_features, 500, data.n_classes), ("relu", "identity"), "cross_entropy")
        for dtype in args.dtypes.split(","):
            config = TrainConfig(spec, seed=seed, dtype=dtype)  # the defaults of `train`
            with threadpool_limits(1):
                runs = train_and_compare(impls, data, config)
            eps = float(np.finfo(dtype).eps)
            for run in runs:
                scaled = math.nan if run.is_reference else run.max_divergence / (eps * math.sqrt(run.steps))
                note = "" if run.ok else (" ERROR" if run.error else " DIVERGED")
                note += f" judged {run.judged_epochs}/{len(run.divergence)} epochs" if run.judged_epochs is not None else ""
                wall = load_seconds + run.seconds
                print(f"{seed:>4} {dtype:8} {run.name:22} {100 * run.final_accuracy:7.2f}% {run.seconds:8.2f} {wall:7.2f} "
                      f"{0.0 if run.is_reference else run.max_divergence:9.1e} {scaled:14.2f}{note}")
                ok &= run.ok and (run.is_twin or (run.final_accuracy >= 0.95 and wall < 60))
    print(f"tolerance: {TRAJECTORY_FACTOR:g} * eps * sqrt(T); 'train s' is every epoch's wall time, 'wall s' adds loading the data")
    print("all reach >= 95% within a minute and stay within the tolerance" if ok else "NOT all reach 95% within a minute within the tolerance")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
