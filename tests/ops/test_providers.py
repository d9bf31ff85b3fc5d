"""Looking operators and providers up; ``mapping`` joins a provider's backward with the
record's reference and samples; unknown names are refused naming what is known."""

import numpy as np
import pytest

from harness import ops


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
