"""What running an implementation in a worker process costs: the round trip of one
step minus the step itself as timed inside the worker, against the step in the
harness's own process. Ratios measured in one run, contenders interleaved round by
round (see speed_targets.py for why).

    python benchmarks/worker_overhead.py                 # the seed's 784-500-10 at batch 64, float64
    python benchmarks/worker_overhead.py --c             # and the C worker (compiled here with cc)
    python benchmarks/worker_overhead.py --rounds 30 --dtype float32

Target: a local Python worker's overhead (shared memory, the default for Python
workers) is at most 10 % of the in-process step. Also printed: the same worker over
raw buffers in the pipe (what a worker in any language gets), the C worker's
overhead, and each round trip against the in-process step as a whole (what a caller
sees, the worker's own step speed included). Not a test; exit status 0 when the
target is met.

The floor: "bare round trip" is a worker that runs the same step on a batch it made
itself and answers a one-line JSON object with no arrays (``{"id": k, "ns": ...}``)
to a one-line request -- two wake-ups through a pipe and two tiny JSON lines, no
protocol, no arrays, no checks. No worker can cost less than it on this machine.

The in-process step is ``NumpyPrepared.step``, the very function the worker runs;
in the worker it gets ``out=`` views of the shared memory its answer goes in
(docs/worker-protocol.md, "Gradients written in place"), so its gradients are not
copied again to leave the worker. The workers here are not judged (as in bench and
train): their answers are lent as views of shared memory; a judged answer (check)
is copied out first, which this does not measure. As in bench, each step is on the
same batch, which travels into shared memory with the first step only ("Arrays
named again"); "a new batch each step" (as in train) copies it for every step.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.core.cases import make_case  # noqa: E402
from harness.core.process_settings import pin_threads, steady_allocator  # noqa: E402
from harness.core.spec import SEED_SPEC  # noqa: E402
from harness.impls.numpy_impl import NumpyImplementation  # noqa: E402
from harness.speed.timing import PreparedStep  # noqa: E402
from harness.workers.remote import WorkerImplementation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.10


class Contender:
    """One way to run the step: ``call()`` runs it once; ``inside`` the seconds the
    worker timed for the step itself (None in process)."""

    def __init__(self, name, impl, case, new_batch=False):
        self.name, self.impl, self.case = name, impl, case
        self.bound = PreparedStep(impl, case)
        # new_batch: each step on a batch made for it (as train), not the same one again (as bench)
        self.new_batch = new_batch
        self.round_trips, self.overhead_samples = [], []

    def step(self):
        prepared = self.bound.prepared
        if self.new_batch:
            return prepared.to_numpy(prepared.step(prepared.batch(self.case.x, self.case.y)))
        return prepared.to_numpy(self.bound.step())

    def inside(self) -> float | None:
        """The last step as the worker timed it (None in process)."""
        return getattr(self.bound.prepared, "last_seconds", None)

    def round(self, seconds: float) -> None:
        trips, insides = [], []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(trips) < 3:
            start = time.perf_counter()
            self.step()
            trips.append(time.perf_counter() - start)
            insides.append(self.inside() or trips[-1])
        self.round_trips.append(float(np.median(trips)))
        self.overhead_samples.append(float(np.median(np.array(trips) - np.array(insides))))

    @property
    def overheads(self) -> np.ndarray:
        return np.array(self.overhead_samples)


class BareStep:
    """The floor's step: one request line to ``bare_worker`` and its answer line;
    ``last_seconds`` is the step as the worker timed it."""

    def __init__(self, dtype: str, batch: int):
        self.proc = subprocess.Popen([sys.executable, __file__, "--bare-worker", "--dtype", dtype, "--batch", str(batch)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.out = self.proc.stdout
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.out, selectors.EVENT_READ)
        self.ids, self.pending, self.last_seconds = 0, b"", None

    def step(self):
        self.ids += 1
        os.write(self.proc.stdin.fileno(), b'{"id":%d}\n' % self.ids)
        while b"\n" not in self.pending:
            self.selector.select()
            chunk = os.read(self.out.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("the bare worker ended")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        self.last_seconds = json.loads(line)["ns"] / 1e9

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


class BareContender(Contender):
    def __init__(self, name, dtype, batch):
        self.name, self.impl = name, None
        self.bound = BareStep(dtype, batch)
        self.round_trips, self.overhead_samples = [], []

    def step(self):
        self.bound.step()

    def inside(self) -> float | None:
        return self.bound.last_seconds


def bare_worker(dtype: str, batch: int) -> int:
    """The floor's worker: the same step, answered with one tiny line per request line."""
    pin_threads(1)
    steady_allocator()
    case = make_case(SEED_SPEC, batch, dtype, 0)
    bound = PreparedStep(NumpyImplementation(), case)
    stdin, stdout = os.fdopen(0, "rb"), os.fdopen(1, "wb")
    while line := stdin.readline():
        request = json.loads(line)
        start = time.perf_counter_ns()
        bound.step()
        elapsed = time.perf_counter_ns() - start
        stdout.write(json.dumps({"id": request["id"], "ns": elapsed}).encode() + b"\n")
        stdout.flush()
    return 0


def compile_c(directory: str) -> str | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    exe = str(Path(directory) / "mlp-worker")
    subprocess.run([cc, "-std=c99", "-O2", "-o", exe, str(ROOT / "workers/c/mlp_worker.c"), "-lm"], check=True)
    return exe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--chunk", type=float, default=0.3, help="seconds per contender per round")
    parser.add_argument("--c", action="store_true", help="also the C worker (workers/c, compiled with cc)")
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)  # the floor's worker
    args = parser.parse_args(argv)
    if args.bare_worker:
        return bare_worker(args.dtype, args.batch)

    pin_threads(1)
    steady_allocator()
    case = make_case(SEED_SPEC, args.batch, args.dtype, 0)
    # Workers: one thread each, pinned and with the same allocator setting, and no
    # inputs sent back (what bench and train use; the checker's runs add that).
    worker = {"threads": 1, "pin": True, "return_inputs": False}
    contenders = [
        Contender("numpy in process", NumpyImplementation(), case),
        Contender("numpy worker, shared memory", WorkerImplementation.python("numpy", **worker), case),
        Contender("  the same, a new batch each step", WorkerImplementation.python("numpy", **worker), case, new_batch=True),
        Contender("numpy worker, raw buffers", WorkerImplementation.python("numpy", shared_memory=False, **worker), case),
        BareContender("floor: bare round trip", args.dtype, args.batch),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_c(tmp) if args.c else None
        if args.c and exe is None:
            print("no C compiler (cc): the C worker is left out")
        if exe:
            contenders.append(Contender("C worker, raw buffers", WorkerImplementation([exe], **worker), case))
        for c in contenders:  # warm up
            c.round(0.2)
            c.round_trips.clear()
            c.overhead_samples.clear()
        for _ in range(args.rounds):
            for c in contenders:
                gc.collect()
                c.round(args.chunk)
        for c in contenders:
            close = getattr(c.impl if c.impl is not None else c.bound, "close", None)
            if close:
                close()

    step = np.array(contenders[0].round_trips)
    print(f"{SEED_SPEC.describe()} at batch {args.batch}, {args.dtype}, one thread; {args.rounds} rounds "
          f"(median, and the range over rounds)")
    print(f"{'contender':32} {'round trip':>12} {'vs in process':>14} {'overhead':>12} {'overhead / in-process step':>30}")
    met = True
    for c in contenders:
        trip = np.array(c.round_trips)
        ratio = c.overheads / step  # round by round: the machine's drift cancels
        line = (f"{c.name:32} {np.median(trip) * 1e3:9.3f} ms {np.median(trip / step - 1):+13.1%} "
                f"{np.median(c.overheads) * 1e3:9.3f} ms "
                f"{np.median(ratio):10.1%} ({ratio.min():.1%}-{ratio.max():.1%})")
        if c.name == "numpy worker, shared memory":
            met = bool(np.median(ratio) <= TARGET)
            line += f"  target <= {TARGET:.0%}: {'met' if met else 'NOT met'}"
        if c.name.startswith("C worker"):
            own = trip - c.overheads
            line += f"  (the C step itself: {np.median(own) * 1e3:.3f} ms)"
        print(line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
