"""The ``bench`` subcommand and the asv suite's shared helpers (not their speed)."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness import registry
from harness.bench import Timing, run_bench, time_step
from harness.cases import make_case
from harness.cli import main
from harness.registry import Capabilities, Implementation, Prepared, resolve
from harness.spec import NetworkSpec

# benchmarks/ is not an installed package (asv reads it from the working tree):
# import it from this checkout without putting the checkout's harness on sys.path.
_ROOT = Path(__file__).resolve().parents[1]
if "benchmarks" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "benchmarks", _ROOT / "benchmarks" / "__init__.py", submodule_search_locations=[str(_ROOT / "benchmarks")])
    sys.modules["benchmarks"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["benchmarks"])

SMALL = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")
QUICK = ["--sizes", "6,5,3", "--min-time", "0.01", "--min-samples", "3"]


class _SleepyPrepared(Prepared):
    def __init__(self, seconds):
        self.seconds = seconds

    def step(self, batch):
        time.sleep(self.seconds)
        return 0.0, []


class _PerSamplePrepared(Prepared):
    def batch(self, x, y):
        return len(x)

    def step(self, batch):
        time.sleep(0.005 * batch)
        return 0.0, []


def test_median_and_quartiles_come_from_the_samples():
    impl = resolve("numpy")
    timing = time_step(impl, make_case(SMALL, 4, "float64"), min_time=0.01, min_samples=7, max_step=5.0)
    assert timing.skipped == ""
    assert len(timing.samples) >= 7
    assert timing.median == pytest.approx(float(np.median(timing.samples)))
    assert timing.q1 <= timing.median <= timing.q3
    assert timing.spread == pytest.approx(timing.q3 - timing.q1)


def test_a_longer_step_measures_longer():
    class Slow(Implementation):
        name = "slow"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.02)

    class Fast(Slow):
        name = "fast"

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.0)

    slow, fast = run_bench([Slow(), Fast()], SMALL, [2], ["float64"], min_time=0.01, min_samples=3)
    assert slow.median >= 0.02
    assert fast.median < slow.median


def test_a_too_slow_step_skips_its_larger_batches_with_the_reason():
    class Slow(Implementation):
        name = "slow"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            return _SleepyPrepared(0.05)

    small, large = run_bench([Slow()], SMALL, [8, 2], ["float64"], min_time=0.01, min_samples=3, max_step=0.01)
    assert (small.batch, large.batch) == (2, 8)
    assert small.median is None and "one step took" in small.skipped and "--max-step" in small.skipped
    assert large.median is None and "batch 2 already too slow" in large.skipped


def test_a_batch_expected_to_be_too_slow_is_skipped_without_running():
    prepared_for = []

    class Linear(Implementation):
        """Each step sleeps 5 ms per sample."""

        name = "linear"
        capabilities = Capabilities(dtypes={"float64"})

        def prepare(self, spec, params, *, dtype="float64", device=None):
            prepared_for.append(spec)
            return _PerSamplePrepared()

    small, large = run_bench([Linear()], SMALL, [2, 40], ["float64"], min_time=0.01, min_samples=3, max_step=0.1)
    assert small.median >= 0.01
    assert large.median is None and "expected from batch 2" in large.skipped
    assert len(prepared_for) == 1  # batch 40 (0.2 s a step) was never prepared


def test_unsupported_dtype_is_skipped_not_timed():
    (timing,) = run_bench([resolve("pure-python")], SMALL, [2], ["float32"], min_time=0.01, min_samples=3)
    assert timing.median is None
    assert "float32" in timing.skipped


def test_cli_writes_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    rc = main(["bench", "--impl", "numpy", "--impl", "pure-python", "--batch", "1,4", *QUICK,
               "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "numpy" in printed and "pure-python" in printed and "batch 4" in printed
    document = json.loads(out_json.read_text())
    assert document["sizes"] == [6, 5, 3] and document["threads"] == 1
    timings = {(t["implementation"], t["dtype"], t["batch"]): t for t in document["timings"]}
    assert set(timings) == {(n, d, b) for n in ("numpy", "pure-python") for d in ("float32", "float64") for b in (1, 4)}
    assert timings[("numpy", "float64", 4)]["median"] > 0
    assert timings[("pure-python", "float32", 1)]["median"] is None
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--batch", "0"], "batch sizes must be >= 1"),
        (["--batch", "a,b"], "expected comma-separated integers"),
        (["--plot", "out.jpg"], "expected a .png file name"),
        (["--impl", "no-such-impl"], "no implementation of that name"),
        (["--min-time", "-1"], "is not a finite number > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_an_unavailable_named_implementation_is_a_usage_error(capsys, monkeypatch):
    class Missing(Implementation):
        name = "missing-dependency"

        def unavailable_reason(self, device=None):
            return "libfoo is not installed"

    registry.implementations()
    monkeypatch.setitem(registry._REGISTRY, "missing-dependency", Missing())
    assert main(["bench", "--impl", "missing-dependency", *QUICK]) == 2
    assert "libfoo is not installed" in capsys.readouterr().err


def test_timing_without_samples_has_no_spread():
    assert Timing("x", "float64", 1).spread is None


# --- the asv suite's helpers (benchmarks/common.py) -----------------------------------


def test_suite_covers_every_registered_implementation_and_the_reference_point(monkeypatch):
    from benchmarks import common

    class ThirdParty(Implementation):
        name = "third-party"

    registry.implementations()
    monkeypatch.setitem(registry._REGISTRY, "third-party", ThirdParty())
    names = common.implementation_names()
    assert {"numpy", "pure-python", "torch", "torch-compile", "third-party", "scalar-autograd"} <= set(names)


@pytest.mark.parametrize(
    "name, model, batch, dtype, expected",
    [
        ("numpy", "seed", 256, "float32", None),
        ("pure-python", "small", 256, "float64", None),
        ("pure-python", "small", 1, "float32", "dtype float32 not supported"),
        ("pure-python", "seed", 64, "float64", "too slow for the benchmark timeout"),
        ("scalar-autograd", "small", 1, "float64", None),
        ("scalar-autograd", "small", 64, "float64", "too slow for the benchmark timeout"),
    ],
)
def test_skip_reasons(name, model, batch, dtype, expected):
    from benchmarks.common import skip_reason

    reason = skip_reason(name, model, batch, dtype)
    assert reason is None if expected is None else expected in reason


def test_a_skipped_combination_raises_not_implemented_for_asv():
    from benchmarks.common import Bound

    with pytest.raises(NotImplementedError, match="float32"):
        Bound("pure-python", "small", 1, "float32")


def test_scalar_autograd_reference_point_is_correct():
    from benchmarks.scalar_autograd import ScalarAutogradImplementation
    from harness.checks import run_checks

    results = run_checks(ScalarAutogradImplementation(), make_case(SMALL, 3, "float64"))
    assert [r for r in results if not r.verdict.ok] == []
    assert any(r.check == "gradients_match_reference" and r.verdict.name == "PASS" for r in results)


def test_gradient_error_track_is_small_for_numpy_and_large_for_a_wrong_gradient(monkeypatch):
    from benchmarks.step import TrackGradientError

    track = TrackGradientError()
    track.setup("numpy", "small", 4, "float64")
    assert track.track_max_relative_gradient_error("numpy", "small", 4, "float64") < 1e-12
    prepared = track.bound.prepared
    real_step = prepared.step

    def doubled(batch):
        loss, grads, dx = real_step(batch)
        return loss, [(2 * dW, db) for dW, db in grads], dx

    monkeypatch.setattr(prepared, "step", doubled)
    assert track.track_max_relative_gradient_error("numpy", "small", 4, "float64") == pytest.approx(1.0)


FAULTS_SCRIPT = """
import ctypes, resource, sys
import numpy as np
from harness.bench import steady_allocator
if sys.argv[1] == "steady":
    assert steady_allocator()
else:  # a fixed 1 MiB mmap threshold: every large block goes back to the kernel on free
    assert ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)
np.ones(2 << 20)  # 16 MiB, once, so that the heap has grown to it
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    np.ones(2 << 20)  # allocate, touch every page, free
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_steady_allocator_keeps_freed_blocks_so_a_repeated_step_does_not_fault():
    def faults(mode):
        run = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(run.stdout)

    # Ten fresh 16 MiB blocks fault at least once per 2 MiB (transparent huge pages;
    # once per 4 KiB page without them): 80 or more. Blocks kept in the heap, not once each.
    assert faults("unmapped") >= 80  # the measurement sees faults when blocks are returned
    assert faults("steady") < 8
