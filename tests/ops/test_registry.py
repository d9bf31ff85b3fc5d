"""Looking operators and providers up; ``mapping`` joins a provider's backward with the
record's reference and samples; unknown names are refused naming what is known."""

import numpy as np
import pytest

from harness import ops
from tests.ops import plugins


def test_mapping_on_arbitrary_inputs_with_overridden_params():
    m = ops.mapping("conv2d", "numpy", stride=1, padding=1)
    x, w, b = np.ones((2, 1, 8, 8)), np.ones((8, 1, 3, 3)), np.zeros(8)
    y = m.forward(x, w, b, **m.params)
    dx, dw, db = m.vjp((x, w, b), (np.ones_like(y),), **m.params)
    assert y.shape == (2, 8, 8, 8) and dx.shape == x.shape and dw.shape == w.shape and db.shape == (8,)
    assert m.name == "conv2d[numpy]" and m.reference is not None and m.dtypes == ("float32", "float64")


def test_unknown_names_are_refused_with_what_is_known():
    with pytest.raises(ValueError, match="operator 'conv3d' is not known; expected one of: linear"):
        ops.mapping("conv3d")
    with pytest.raises(ValueError, match="provider 'cupy' is not known"):
        ops.mapping("relu", "cupy")
    with pytest.raises(ValueError, match="no parameter 'stride'"):
        ops.mapping("relu", stride=2)


def test_a_registered_provider_is_offered_and_listed():
    provider = ops.Provider("test-only", {"relu": ops.provider("numpy").operators["relu"]})
    ops.register_provider(provider)
    try:
        assert "test-only" in ops.providers_of("relu") and "test-only" not in ops.providers_of("tanh")
        assert ops.mapping("relu", "test-only").name == "relu[test-only]"
    finally:
        ops.unregister_provider("test-only")


def test_a_plugin_provider_is_found_by_entry_point_and_its_wrong_backward_caught(tmp_path, monkeypatch):
    import harness

    plugins.install(tmp_path, monkeypatch, "wrong-relu", plugins.WRONG_RELU)
    assert ops.providers()["wrong-relu"].plugin and "wrong-relu" in ops.providers_of("relu")
    results = harness.check(ops.mapping("relu", "wrong-relu"), dtype="float64")
    failed = {r.check for r in results if not r.ok}
    assert "vjp_matches_oracle" in failed, failed


def test_a_plugin_that_cannot_load_is_reported_not_fatal(tmp_path, monkeypatch):
    from harness.ops.registry import load_failures

    plugins.install(tmp_path, monkeypatch, "broken-ops", plugins.BROKEN)
    with pytest.warns(UserWarning, match="broken-ops.*failed to load.*cannot load"):
        found = ops.providers()
    assert "broken-ops" not in found and "numpy" in found
    assert "cannot load" in load_failures()["broken-ops"]
    with pytest.raises(ValueError, match="provider 'broken-ops' failed to load: .*cannot load"):
        ops.mapping("relu", "broken-ops")
