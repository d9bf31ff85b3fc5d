"""Hypothesis strategies for conformance cases within an implementation's capabilities.

Every drawn value is a dyadic rational (weights and biases multiples of 2**-6, inputs
and regression targets multiples of 2**-2, all within +-2), so products and sums in a
small network are exact in float32 and float64 alike: a bias can then put a ReLU
pre-activation exactly on its kink, and a failure never hinges on how a value rounds
when it is saved to a case file. Sizes are small (widths up to ``MAX_WIDTH``, up to
``MAX_LAYERS`` layers, batches up to ``MAX_BATCH``) so that a run stays fast and a
failure shrinks to a minimal network and batch: every integer draws toward 0, so
shrinking removes layers, narrows them, shortens the batch and zeroes values.

An implementation that declares ``Capabilities(compiles_per_shape=True)`` (as
``torch-compile``) gets the planner's fixed handful of shapes
(``harness.checks.planner.fixed_shapes``); only values vary, so it compiles a few
times per process, not once per example.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.checks.planner import fixed_shapes
from harness.core.cases import Case
from harness.core.protocol import Capabilities, Implementation
from harness.core.registry import resolve
from harness.core.spec import DTYPES, KINKED, NetworkSpec

MAX_WIDTH = 6
MAX_LAYERS = 3
MAX_BATCH = 4
WEIGHT_STEP, WEIGHT_LIMIT = 2.0**-6, 2.0  # weights and biases: k / 64, |k / 64| <= 2
INPUT_STEP, INPUT_LIMIT = 2.0**-2, 2.0  # inputs and mse targets: k / 4, |k / 4| <= 2
# Multipliers of the last layer; powers of two keep the values exact. 2**10 makes
# logits of order 1e3, past where a naive softmax's exp overflows in float32 (~88).
LOGIT_SCALES = (1.0, 2.0**7, 2.0**10)

def _capabilities(target) -> Capabilities:
    if target is None:
        return Capabilities()
    if isinstance(target, Capabilities):
        return target
    return resolve(target).capabilities


def specs(capabilities=None, *, max_width: int = MAX_WIDTH, max_layers: int = MAX_LAYERS):
    """Networks whose activations and loss the implementation (or ``Capabilities``)
    declares: 1 to ``max_layers`` layers of widths 1 to ``max_width``."""
    caps = _capabilities(capabilities)
    activations = sorted(caps.activations)
    losses = sorted(caps.losses)
    if not activations or not losses:
        raise ValueError(f"capabilities {caps}: need at least one activation and one loss to draw networks")
    # identity first: the shrinker moves towards the first element.
    activations.sort(key=lambda a: a != "identity")

    @st.composite
    def draw(draw):
        n_layers = draw(st.integers(1, max_layers))
        sizes = tuple(draw(st.integers(1, max_width)) for _ in range(n_layers + 1))
        acts = tuple(draw(st.sampled_from(activations)) for _ in range(n_layers))
        return NetworkSpec(sizes, acts, draw(st.sampled_from(losses)))

    return draw()


def dtypes(capabilities=None):
    """The float dtypes the implementation declares (float64 first, where declared)."""
    declared = [d for d in reversed(DTYPES) if d in _capabilities(capabilities).dtypes]
    if not declared:
        raise ValueError(f"capabilities declare no dtype this harness knows; expected some of {', '.join(DTYPES)}")
    return st.sampled_from(declared)


def batch_sizes(max_batch: int = MAX_BATCH):
    return st.integers(1, max_batch)


def _dyadic(shape, step, limit, dtype):
    bound = int(limit / step)
    return hnp.arrays(np.int64, shape, elements=st.integers(-bound, bound)).map(lambda k: (k * step).astype(dtype))


def parameters(spec: NetworkSpec, dtype: str = "float64"):
    """``((W0, b0), (W1, b1), ...)`` for ``spec``, dyadic values within +-2."""
    return st.tuples(
        *(st.tuples(_dyadic(w, WEIGHT_STEP, WEIGHT_LIMIT, dtype), _dyadic(b, WEIGHT_STEP, WEIGHT_LIMIT, dtype)) for w, b in spec.shapes())
    )


def inputs(spec: NetworkSpec, batch: int, dtype: str = "float64"):
    """``x`` shaped ``(batch, sizes[0])``, multiples of 1/4 within +-2."""
    return _dyadic((batch, spec.sizes[0]), INPUT_STEP, INPUT_LIMIT, dtype)


def targets(spec: NetworkSpec, batch: int, dtype: str = "float64"):
    """Integer labels ``(batch,)`` for cross-entropy; ``(batch, out)`` floats for MSE."""
    out = spec.sizes[-1]
    if spec.loss == "cross_entropy":
        return hnp.arrays(np.int64, (batch,), elements=st.integers(0, out - 1))
    return _dyadic((batch, out), INPUT_STEP, INPUT_LIMIT, dtype)


def _put_on_kinks(spec, params, x, chosen, rows):
    # b[j] = -(x[n] @ W[j]) makes z[n, j] exactly 0.0: dyadic products and sums of a
    # few terms are exact in both dtypes.
    (W, b), rest = params[0], params[1:]
    exact = -np.einsum("jk,jk->j", x[rows].astype(np.float64), W.astype(np.float64))
    b = np.where(chosen, exact, b).astype(b.dtype)
    return ((W, b), *rest)


@st.composite
def _cases(draw, spec_strategy, batch_strategy, dtype_strategy):
    spec = draw(spec_strategy)
    batch = draw(batch_strategy)
    dtype = draw(dtype_strategy)
    params = draw(parameters(spec, dtype))
    x = draw(inputs(spec, batch, dtype))
    y = draw(targets(spec, batch, dtype))
    labels = []
    if spec.activations[0] in KINKED and draw(st.booleans()):
        width = spec.sizes[1]
        chosen = np.array(draw(st.lists(st.booleans(), min_size=width, max_size=width)))
        rows = np.array(draw(st.lists(st.integers(0, batch - 1), min_size=width, max_size=width)))
        params = _put_on_kinks(spec, params, x, chosen, rows)
        if chosen.any():
            labels.append("on kinks")
    scale = draw(st.sampled_from(LOGIT_SCALES))
    if scale != 1.0:
        W, b = params[-1]
        params = (*params[:-1], (W * np.asarray(scale, W.dtype), b * np.asarray(scale, b.dtype)))
        labels.append(f"logits x{scale:g}")
    return Case(spec, tuple(params), x, y, seed=None, label=", ".join(labels) or "drawn")


def cases(capabilities=None, *, specs_from=None, batches_from=None, dtypes_from=None):
    """Whole cases (spec, parameters, batch, targets) within ``capabilities``, some
    with first-layer pre-activations exactly on a ReLU kink, some with large logits.

    ``specs_from`` / ``batches_from`` / ``dtypes_from`` replace the default strategies.
    Drawn cases have no seed: reproduce one from a case file (``save_case``)."""
    return _cases(
        specs_from if specs_from is not None else specs(capabilities),
        batches_from if batches_from is not None else batch_sizes(),
        dtypes_from if dtypes_from is not None else dtypes(capabilities),
    )


def cases_for(impl):
    """Cases for one implementation: within its capabilities, and within the
    planner's fixed shapes if it compiles per shape."""
    impl = impl if isinstance(impl, Implementation) else resolve(impl)
    caps = impl.capabilities
    shapes = fixed_shapes(impl)
    if shapes is None:
        return cases(caps)
    if not shapes:
        return cases(caps, batches_from=st.just(2))  # none of ours fit: bounded by MAX_WIDTH alone
    pick = st.sampled_from(shapes)
    return pick.flatmap(lambda sn: cases(caps, specs_from=st.just(sn[0]), batches_from=st.just(sn[1])))


__all__ = ["batch_sizes", "cases", "cases_for", "dtypes", "inputs", "parameters", "specs", "targets"]
