"""The CUDA speed target: the compiled step (CUDA graphs) against eager CUDA.

    python benchmarks/cuda_speed.py       # on a machine with a CUDA GPU and torch

torch-compile uses ``mode="reduce-overhead"`` on CUDA, which captures the step in
CUDA graphs; the target is a compiled step at most 0.5x eager's at batch 64 on the
seed model. Prints the ratio per dtype and batch, interleaved in one run like
speed_targets.py; exits 0 when the batch-64 target is met, 1 when not, 2 when
there is no GPU. No GPU was available where this was written: it has not been run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import case, implementation, pin_process  # noqa: E402
from benchmarks.speed_targets import interleaved  # noqa: E402


def bound_on_cuda(name, batch, dtype):
    impl = implementation(name)
    c = case("seed", batch, dtype)
    prepared = impl.prepare(c.spec, c.params, dtype=dtype, device="cuda")
    native = prepared.batch(c.x, c.y)  # torch-compile compiles and captures here

    def step():
        prepared.step(native)
        prepared.synchronize()

    for _ in range(5):  # CUDA graph warm-up runs and the allocator's first passes
        step()
    return step


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("cuda_speed: no CUDA device here; nothing measured", file=sys.stderr)
        return 2
    pin_process()
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    met = True
    for dtype in ("float32", "float64"):
        for batch in (1, 64, 256):
            steps = {name: bound_on_cuda(name, batch, dtype) for name in ("torch-compile", "torch")}
            t = interleaved(steps, rounds=9, chunk=0.2)
            ratio = t.ratio("torch-compile", "torch")
            target = batch == 64
            if target:
                met &= ratio <= 0.5
            print(f"  {dtype} batch {batch:<3}: eager {t['torch'] * 1e6:8.1f} us, compiled {t['torch-compile'] * 1e6:8.1f} us,"
                  f" ratio {ratio:.3f}" + ("  (target <= 0.5: " + ("MET)" if ratio <= 0.5 else "MISS)") if target else ""))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
