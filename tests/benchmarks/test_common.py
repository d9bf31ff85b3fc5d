"""The asv suite's shared helpers (benchmarks/common.py), not its speed."""

import importlib.util
import sys
from pathlib import Path

import pytest

from harness.core import registry
from harness.core.cases import make_case
from harness.core.protocol import Implementation
from harness.core.spec import NetworkSpec

# benchmarks/ is not an installed package (asv reads it from the working tree):
# import it from this checkout without putting the checkout's harness on sys.path.
_ROOT = Path(__file__).resolve().parents[2]
if "benchmarks" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "benchmarks", _ROOT / "benchmarks" / "__init__.py", submodule_search_locations=[str(_ROOT / "benchmarks")])
    sys.modules["benchmarks"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["benchmarks"])

SMALL = NetworkSpec((6, 5, 3), ("relu", "identity"), "cross_entropy")


def test_suite_covers_every_registered_implementation_and_the_reference_point(monkeypatch):
    from benchmarks import common

    class ThirdParty(Implementation):
        name = "third-party"

    registry.implementations()
    monkeypatch.setitem(registry._REGISTRY, "third-party", ThirdParty())
    names = common.implementation_names()
    assert {"numpy", "pure-python", "torch", "torch-compile", "third-party", "scalar-autograd"} <= set(names)
    assert {"c-mlp", "node-mlp"} <= set(names)  # the worker programs of benchmarks/workers.json


@pytest.mark.parametrize(
    "name, model, batch, dtype, expected",
    [
        ("numpy", "seed", 256, "float32", None),
        ("pure-python", "small", 256, "float64", None),
        ("pure-python", "small", 1, "float32", "dtype float32 not supported"),
        ("pure-python", "seed", 64, "float64", "beyond the declared max_multiply_adds"),
        ("scalar-autograd", "small", 1, "float64", None),
        ("scalar-autograd", "small", 64, "float64", "beyond the declared max_multiply_adds"),
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
    from harness import run_checks

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



def test_a_worker_program_of_workers_json_is_built_measured_and_timed_inside_itself():
    import shutil

    from benchmarks.step import TrackStepInsideWorker

    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    track = TrackStepInsideWorker()
    track.setup("c-mlp", "small", 16, "float64")
    inside = track.track_step_inside_worker("c-mlp", "small", 16, "float64")
    assert 0 < inside < 1
    assert track.bound.prepared.to_numpy(track.bound.step()).grads[0][0].shape == (32, 64)


def test_a_worker_program_whose_tools_are_missing_is_not_applicable(monkeypatch):
    from benchmarks import common

    monkeypatch.setattr(common, "foreign_workers", lambda: {"fortran-mlp": {"command": ["no-such-fortran-runtime"]}})
    common.implementation.cache_clear()
    try:
        with pytest.raises(NotImplementedError, match="no-such-fortran-runtime is not installed"):
            common.implementation("fortran-mlp")
    finally:
        common.implementation.cache_clear()
