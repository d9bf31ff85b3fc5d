"""The operator database across commits: each built-in operator's backward (its VJP, as
the harness calls it) at a realistic size, per provider and dtype; and the checker's cost
per operator (``harness.check`` on the operator's sample cases in float64).

The torch provider's VJP runs the forward again under autograd, then the backward (the
mapping is given arrays, not a graph); the pure-Python one converts to lists and back:
both are what checking and training through ``harness.ops`` pay.
"""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks.common import DTYPES, pin_process

PROVIDERS = ("numpy", "torch", "pure-python")


def _normal(rng, *shape):
    return rng.standard_normal(shape)


# operator -> (inputs from a generator, params): sizes of a small CNN's or transformer's layers
REALISTIC = {
    "linear": (lambda r: (_normal(r, 64, 256), _normal(r, 128, 256), _normal(r, 128)), {}),
    "matmul": (lambda r: (_normal(r, 16, 64, 64), _normal(r, 64, 64)), {}),
    "embedding": (lambda r: (r.integers(0, 1000, (64, 32)), _normal(r, 1000, 64)), {}),
    "conv1d": (lambda r: (_normal(r, 16, 16, 128), _normal(r, 32, 16, 5), _normal(r, 32)),
               {"stride": 1, "padding": 2, "dilation": 1}),
    "conv2d": (lambda r: (_normal(r, 16, 8, 32, 32), _normal(r, 16, 8, 3, 3), _normal(r, 16)),
               {"stride": 1, "padding": 1, "dilation": 1}),
    "max_pool2d": (lambda r: (_normal(r, 16, 16, 32, 32),), {"kernel": 2, "stride": 2, "padding": 0}),
    "avg_pool2d": (lambda r: (_normal(r, 16, 16, 32, 32),),
                   {"kernel": 2, "stride": 2, "padding": 0, "count_include_pad": True}),
    "softmax": (lambda r: (_normal(r, 256, 1000),), {"axis": -1}),
    "log_softmax": (lambda r: (_normal(r, 256, 1000),), {"axis": -1}),
    "logsumexp": (lambda r: (_normal(r, 256, 1000),), {"axis": -1}),
    "cross_entropy": (lambda r: (_normal(r, 256, 1000), r.integers(0, 1000, 256)),
                      {"ignore_index": -100, "label_smoothing": 0.0}),
    "mse": (lambda r: (_normal(r, 256, 128), _normal(r, 256, 128)), {}),
    "layer_norm": (lambda r: (_normal(r, 256, 512), _normal(r, 512), _normal(r, 512)), {"eps": 1e-5}),
    "batch_norm": (lambda r: (_normal(r, 32, 64, 16, 16), _normal(r, 64), _normal(r, 64)), {"eps": 1e-5}),
    "attention": (lambda r: (_normal(r, 8, 128, 64), _normal(r, 8, 128, 64), _normal(r, 8, 128, 64)),
                  {"causal": True, "scale": None}),
    "sum": (lambda r: (_normal(r, 64, 256, 64),), {"axis": [0, 2]}),
    "mean": (lambda r: (_normal(r, 64, 256, 64),), {"axis": [0, 2]}),
    "max": (lambda r: (_normal(r, 64, 256, 64),), {"axis": -1}),
    "reshape": (lambda r: (_normal(r, 64, 8, 16, 16),), {"shape": [64, -1]}),
    "transpose": (lambda r: (_normal(r, 64, 128, 32),), {"perm": [0, 2, 1]}),
    "concatenate": (lambda r: (_normal(r, 256, 128), _normal(r, 256, 64), _normal(r, 256, 32)), {"axis": 1}),
}
for _name in ("relu", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "abs", "identity"):
    REALISTIC[_name] = (lambda r: (_normal(r, 256, 1024),), {})
REALISTIC["leaky_relu"] = (REALISTIC["relu"][0], {"negative_slope": 0.01})


def _operator_names():
    from harness import ops

    return ops.operators()


def _mapping_or_skip(op_name, provider_name):
    from harness import ops

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        provider = ops.providers().get(provider_name)
    if provider is None or op_name not in provider.operators:
        raise NotImplementedError(f"{provider_name} does not provide {op_name}")
    why = provider.available()
    if why:
        raise NotImplementedError(why)
    return ops.mapping(op_name, provider_name)


def realistic_inputs(op_name, dtype):
    """The realistic inputs of ``op_name`` in ``dtype`` (integer inputs left integer), and its params."""
    build, params = REALISTIC[op_name]
    inputs = tuple(x.astype(dtype) if x.dtype.kind == "f" else x for x in build(np.random.default_rng(0)))
    return inputs, dict(params)


class TimeOperatorVjp:
    params = [_operator_names(), list(PROVIDERS), list(DTYPES)]
    param_names = ["operator", "provider", "dtype"]
    timeout = 300
    number = 1
    repeat = (1, 5, 20.0)

    def setup(self, op_name, provider_name, dtype):
        self.mapping = _mapping_or_skip(op_name, provider_name)
        pin_process()
        self.inputs, self.params = realistic_inputs(op_name, dtype)
        out = self.mapping.forward(*self.inputs, **self.params)
        outs = out if isinstance(out, tuple) else (out,)
        rng = np.random.default_rng(1)
        self.cotangents = tuple(rng.standard_normal(np.shape(o)).astype(dtype) for o in outs)

    def time_vjp(self, op_name, provider_name, dtype):
        self.mapping.vjp(self.inputs, self.cotangents, **self.params)


class TimeOperatorCheck:
    """The checker's cost for one operator: every mapping check on its sample cases, float64."""

    params = [_operator_names(), list(PROVIDERS)]
    param_names = ["operator", "provider"]
    timeout = 600
    number = 1
    repeat = (1, 2, 60.0)
    warmup_time = 0.0

    def setup(self, op_name, provider_name):
        self.mapping = _mapping_or_skip(op_name, provider_name)
        pin_process()

    def time_check(self, op_name, provider_name):
        import harness

        harness.check(self.mapping, dtype="float64")
