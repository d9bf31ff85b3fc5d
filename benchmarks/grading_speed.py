"""How grading scales with workers: 100 small submissions (copies of a correct NumPy
backprop, one small case each) graded through the executor with 2 workers and with
1, for local pool processes and for a Dask LocalCluster; the ratios are measured in
one run, so the machine's load is shared by both sides. Also printed: Dask's
overhead per task over local processes (no-op tasks, one worker each, and the
grading runs' difference per submission).

    python benchmarks/grading_speed.py                    # 100 submissions, local and Dask
    python benchmarks/grading_speed.py --submissions 40 --no-dask

Target (issue 15): 2 workers at least 1.7x faster than 1, for both executors. Not a
test; exit status 0 when every target measured is met. The executor's start (pool
processes, a LocalCluster) is timed apart and printed; the ratio is of the grading.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.commands.check import selected_case  # noqa: E402
from harness.executors.engine import LOCAL, open_engine, run_tasks  # noqa: E402
from harness.executors.tasks import PYTHON, CheckTask, WorkerSpec, run_check_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.7
# a learner's correct NumPy backprop: the worked example's
SUBMISSION = (ROOT / "examples" / "backprop-harness-example" / "src" / "backprop_harness_example" / "mlp.py").read_text()


class _CaseOptions:  # what check's one-case selection reads: a tiny network at batch 4
    sizes, activations, loss, batch, dtype, seed = "6,5,3", None, None, 4, None, 0
    case_file, kinks, logit_scale = None, False, None


def submissions(n: int) -> list[CheckTask]:
    case = selected_case(_CaseOptions())
    return [CheckTask(WorkerSpec(PYTHON, f"learner_{i:03d}:backprop", {f"learner_{i:03d}.py": SUBMISSION.encode()}),
                      cases=(case,), timeout=60, memory_limit=2 << 30) for i in range(n)]


def nothing(i):
    return i


def grade(scheduler, jobs: int, tasks) -> tuple[float, float, list]:
    """(seconds to start the executor, seconds to grade, results)."""
    t0 = time.perf_counter()
    with open_engine(jobs, scheduler) as engine:
        run_tasks(engine, nothing, list(range(jobs)), [""] * jobs)  # every worker started and warm
        t1 = time.perf_counter()
        results = run_tasks(engine, run_check_task, tasks, [t.worker.target for t in tasks])
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, results


def per_task(scheduler, n: int = 200, repeats: int = 3) -> float:
    """Median seconds per no-op task, submitted one at a time (latency), on one worker."""
    with open_engine(1, scheduler) as engine:
        run_tasks(engine, nothing, [0], [""])
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(n):
                engine.executor.submit(nothing, i).result()
            samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--no-dask", action="store_true", help="the local executor only")
    args = parser.parse_args(argv)
    tasks = submissions(args.submissions)
    executors = [("local", None)]
    if not args.no_dask:
        if importlib.util.find_spec("distributed") is None:
            print("Dask is not installed (pip install 'backprop-harness[dask]'): local executor only")
        else:
            executors.append(("dask", LOCAL))
    met, seconds = True, {}
    print(f"{args.submissions} submissions, one 6-5-3 case at batch 4 each, every check")
    for label, scheduler in executors:
        start1, one, results = grade(scheduler, 1, tasks)
        start2, two, results2 = grade(scheduler, 2, tasks)
        verdicts = {x["verdict"] for res in results + results2 for run in res["runs"] for x in run["results"]}
        failed = [res["impl"] for res in results + results2
                  if any(x["verdict"] not in ("PASS", "SKIP") for run in res["runs"] for x in run["results"])]
        ratio = one / two
        met = met and ratio >= TARGET and not failed
        seconds[label] = one
        print(f"{label:6s} 1 worker {one:7.2f} s   2 workers {two:7.2f} s   ratio {ratio:.2f}x (target >= {TARGET}x: "
              f"{'met' if ratio >= TARGET else 'NOT met'})   executor start {start1:.2f} s / {start2:.2f} s")
        if failed:  # a correct submission must pass, or the timing measured something else
            print(f"  {len(failed)} gradings did not pass (first: {failed[0]}; verdicts seen {sorted(verdicts)})")
    if "dask" in seconds:
        local_task, dask_task = per_task(None), per_task(LOCAL)
        print(f"per-task overhead, no-op tasks one at a time: local {local_task * 1e3:.2f} ms, dask {dask_task * 1e3:.2f} ms, "
              f"dask over local {(dask_task - local_task) * 1e3:.2f} ms")
        print(f"per-submission difference in the 1-worker grading runs: "
              f"{(seconds['dask'] - seconds['local']) / args.submissions * 1e3:.1f} ms")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
