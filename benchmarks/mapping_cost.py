"""What checking any mapping costs at 10^6 input elements, in units of one float64
forward plus backward of that mapping at that size, measured in the same run.

For each mapping and dtype it prints the unit (the fastest ``forward(x); vjp(x, c)`` in
float64 of 5), the CPU time of ``harness.check(mapping, size=10**6)`` (every check:
contracts, probes, and the JVP checks where there is a JVP) and of ``vjp_probes`` alone,
both in units, and the forward evaluations the oracle made. Target: at most 30 units
for the whole check (gradcheck's full mode needs about 2 * 10^6 forward evaluations
there). One thread, as the checks run, and CPU time of this process (``process_time``)
for both the unit and the checks: on a shared machine wall time counts the other
tenants' work too.

Each check is divided by the unit measured just before and just after it (the faster
of the two), and the table gives the median of these paired ratios over ``--repeat``
checks, and their range: this machine's speed drifts by 10 % and more over seconds,
so a unit measured once, or minima taken at different moments, moved the result by
up to 30 %. A first check, not counted, pays for the pages its arrays touch first
(minor page faults: the first check at 10^6 elements costs about twice the later ones).

    python benchmarks/mapping_cost.py [--size 1000000] [--repeat 7] [--probes 5] [--only relu,tanh]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

if __package__ in (None, ""):  # run as a script: this checkout's harness, not an installed one
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.checks.mapping_probes import check_vjp_probes  # noqa: E402
from harness.checks.mapping_runner import check_mapping, run_mapping_check  # noqa: E402
from harness.checks.mapping_trial import PROBES, MappingTrial  # noqa: E402
from harness.core.mapping import Input, Mapping  # noqa: E402
from harness.core.mapping_cases import sample_cases  # noqa: E402
from harness.mappings import examples  # noqa: E402
from harness.speed.timing import steady_allocator  # noqa: E402

TARGET_UNITS = 30


def tanh_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    return (g * (1 - np.tanh(x) ** 2),)


def layer_norm_forward(x):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    return xc / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + 1e-5)


def layer_norm_vjp(inputs, cotangents):
    (x,), (g,) = inputs, cotangents
    xc = x - x.mean(axis=-1, keepdims=True)
    inv = 1 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + 1e-5)
    xhat = xc * inv
    return (inv * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)),)


def subjects(size):
    """(mapping, a float64 input of ``size`` elements for the unit)."""
    width = 1000
    rows = size // width
    out = [
        (Mapping("tanh", np.tanh, tanh_vjp, inputs=[Input((size,))], dtypes=("float32", "float64")), (size,)),
        (Mapping("relu", examples.relu_forward, examples.relu_vjp, examples.relu_jvp, inputs=[Input((rows, width))],
                 dtypes=("float32", "float64")), (rows, width)),
        (Mapping("softmax", examples.softmax_forward, examples.softmax_vjp, inputs=[Input((rows, width))],
                 dtypes=("float32", "float64")), (rows, width)),
        (Mapping("layer_norm", layer_norm_forward, layer_norm_vjp, inputs=[Input((rows, width))],
                 dtypes=("float32", "float64")), (rows, width)),
    ]
    try:
        import torch

        from harness.mappings.torch_mapping import torch_mapping

        gelu = torch_mapping(torch.nn.functional.gelu, inputs=[Input((rows, width))], name="torch gelu (Richardson)")
        out.append((gelu, (rows, width)))
    except ImportError:
        print("torch not installed: the torch mapping is left out")
    return out


def unit_seconds(mapping, shape, repeat=15):
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=shape), rng.normal(size=shape)
    times = []
    for _ in range(repeat):
        start = time.process_time()
        mapping.forward(x)
        mapping.vjp((x,), (c,))
        times.append(time.process_time() - start)
    return min(times)  # the check's time is a minimum too: both as undisturbed as the machine allows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10**6)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--probes", type=int, default=PROBES, help=f"random probe directions (default {PROBES})")
    parser.add_argument("--only", default="", help="comma-separated mapping names to measure (default: every one)")
    args = parser.parse_args(argv)
    # glibc keeps freed arrays for the next allocation (as every speed benchmark here
    # does): otherwise each million-element array costs page faults, on both sides
    steady_allocator()
    header = (f"{'mapping':28} {'dtype':8} {'unit ms':>8} {'check s':>8} {'units':>6} {'range':^11} {'probes':>7} "
              f"{'evals':>6}  verdicts")
    print("CPU seconds of this process; units = float64 forward + backward of the mapping at that size")
    print(header)
    print("-" * len(header))
    worst = 0.0
    with threadpool_limits(1):
        only = {name for name in args.only.split(",") if name}
        for mapping, shape in subjects(args.size):
            if only and not any(mapping.name.startswith(name) for name in only):
                continue
            for dtype in mapping.dtypes:
                check_mapping(mapping, dtype=dtype, size=args.size, probes=args.probes)  # first touches, not counted
                ratios, probe_ratios, units, totals, evals = [], [], [], [], 0
                for _ in range(args.repeat):
                    # each check's time over the unit measured just before and just after it
                    # (a paired ratio: a shared machine's speed drifts by 10 % over seconds)
                    before = unit_seconds(mapping, shape, repeat=5)
                    start = time.process_time()
                    results = check_mapping(mapping, dtype=dtype, size=args.size, probes=args.probes)
                    total = time.process_time() - start
                    trial = MappingTrial(mapping, sample_cases(mapping, dtype, 0, args.size)[0], probes=args.probes)
                    _ = trial.first, trial.differentiator  # the probes' own share, after the shared first call
                    start = time.process_time()
                    run_mapping_check(check_vjp_probes, trial)
                    probe = time.process_time() - start
                    evals = trial.differentiator.evaluations
                    unit = min(before, unit_seconds(mapping, shape, repeat=5))
                    ratios.append(total / unit)
                    probe_ratios.append(probe / unit)
                    units.append(unit)
                    totals.append(total)
                unit, total, probe = statistics.median(units), statistics.median(ratios), statistics.median(probe_ratios)
                worst = max(worst, total)
                wrong = sorted({f"{r.check} {r.verdict.value}" for r in results if not r.ok})
                ran = sum(r.verdict.value == "PASS" for r in results)
                print(f"{mapping.name:28} {dtype:8} {unit * 1e3:8.1f} {statistics.median(totals):8.2f} {total:6.1f} "
                      f"{min(ratios):5.1f}-{max(ratios):<5.1f} {probe:7.1f} {evals:6d}  {ran} PASS"
                      + (f"; NOT OK: {', '.join(wrong)}" if wrong else ", the rest SKIP"))
    print(f"\nworst: {worst:.1f} units (median over --repeat; target <= {TARGET_UNITS}); units = float64 forward + backward "
          f"at {args.size} elements")


if __name__ == "__main__":
    main()
