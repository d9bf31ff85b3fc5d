"""How long the checker takes on the seed's 784-500-10 network, one thread.

Prints, per implementation, the median wall time of (a) the value checks that cover
every parameter element (loss, all 397,510 gradient elements against the oracle,
4 seeded directional probes) and (b) every check, contracts and properties included.
Target: (a) under 1 s per implementation and case in float64 on one core.

    python benchmarks/checker_speed.py [--batch 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from threadpoolctl import threadpool_limits

from harness.checks import ALL_CHECKS, Trial, run_check
from harness.checks.probes import check_gradient_probes
from harness.checks.values import VALUE_CHECKS
from harness.core.cases import make_case
from harness.core.registry import available, resolve
from harness.core.spec import SEED_SPEC

THREADS = 1


def _time(impl, case, checks, repeat):
    times = []
    for _ in range(repeat):
        trial = Trial(impl, case)  # fresh: the oracle and the step are part of the cost
        start = time.perf_counter()
        results = [run_check(c, trial) for c in checks]
        times.append(time.perf_counter() - start)
        assert all(r.ok for r in results), [r.describe() for r in results if not r.ok]
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--impl", action="append")
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(THREADS)
    except ImportError:
        pass
    case = make_case(SEED_SPEC, args.batch, "float64", 0)
    impls = [resolve(n) for n in args.impl] if args.impl else [
        i for i in available().values() if i.capabilities.too_slow(case.spec, case.batch) is None]
    print(f"checker cost at {SEED_SPEC.describe()} batch={args.batch} float64, {THREADS} thread, median of {args.repeat}")
    print(f"{'implementation':<16}{'value checks (s)':>18}{'all checks (s)':>16}")
    with threadpool_limits(THREADS):
        for impl in impls:
            _ = Trial(impl, case).first  # warm-up (torch-compile compiles here)
            value = _time(impl, case, [*VALUE_CHECKS, check_gradient_probes], args.repeat)
            everything = _time(impl, case, ALL_CHECKS, max(1, args.repeat // 2))
            print(f"{impl.name:<16}{value:>18.3f}{everything:>16.3f}")


if __name__ == "__main__":
    main()
