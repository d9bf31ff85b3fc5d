"""A PyTorch function, ``torch.autograd.Function.apply`` or ``nn.Module`` as a mapping
under test: the forward runs in torch (in the inputs' dtype, float64 for the oracle,
complex where torch allows it), the backward is ``torch.autograd.grad``, the JVP
``torch.func.jvp`` where the function has forward-mode rules, and the backward of the
backward is autograd's double backward.

A module's parameters count as inputs (named as in the module, after the given ones);
its floating buffers follow the call's dtype, on copies, so a batch norm's running
statistics are never the module's own. Note: autograd itself casts a custom
Function's gradient to its input's dtype and sums a broadcast one down to its shape,
so those two mistakes reach the checks as value errors, not as dtype or shape ones.
"""

from __future__ import annotations

import numpy as np

from harness.core.mapping import Input, Mapping, NotOffered

# Words in torch's refusals that mean "not offered here", not "wrong".
_NOT_OFFERED = ("setup_context", "forward mode AD", "forward-mode", "jvp function", "jvp is not implemented",
                "not implemented for forward", "once_differentiable", "double backward", "does not support")


def torch_mapping(fn_or_module, inputs=(), params=None, samples=None, reference=None,
                  dtypes=("float32", "float64"), name=None, nondeterminism=0.0) -> Mapping:
    """A ``harness.Mapping`` for a PyTorch callable (see the module docstring).
    ``reference``, if given, is called like ``fn_or_module`` (tensors in, in float64)."""
    import torch

    module = fn_or_module if isinstance(fn_or_module, torch.nn.Module) else None
    names = [n for n, _ in module.named_parameters()] if module is not None else []
    specs = list(inputs) + [Input(tuple(p.shape), name=n) for n, p in module.named_parameters()] if module else list(inputs)
    call = _module_call(module, len(inputs), names) if module is not None else fn_or_module
    label = name or (type(module).__name__ if module is not None
                     else getattr(fn_or_module, "__name__", None) or "torch function")
    wrapped_reference = _numpy_forward(_module_call(reference, len(inputs), names) if isinstance(reference, torch.nn.Module)
                                       else reference) if reference is not None else None
    mapping = Mapping(
        name=label,
        forward=_numpy_forward(call),
        vjp=_numpy_vjp(call),
        jvp=_numpy_jvp(call),
        inputs=specs,
        params=params,
        samples=samples,
        reference=wrapped_reference,
        dtypes=dtypes,
        nondeterminism=nondeterminism,
    )
    mapping.second_order = lambda n_inputs: _second_order(call, label, mapping.dtypes, n_inputs)
    return mapping


def _module_call(module, n_given, names):
    """``module`` as a function of (given inputs..., its parameters...)."""
    import torch

    def call(*args, **params):
        given, weights = args[:n_given], args[n_given:]
        dtype = next((a.dtype for a in weights if a.is_floating_point() or a.is_complex()), None)
        buffers = {n: (b.to(dtype) if dtype is not None and (b.is_floating_point()) else b).clone()
                   for n, b in module.named_buffers()}
        return torch.func.functional_call(module, {**dict(zip(names, weights)), **buffers}, given, params)

    return call


def _tensor(array, grad=False):
    import torch

    if array.flags.c_contiguous or array.size == 0:
        # reshape: ascontiguousarray turns a 0-d array (a loss's cotangent) into shape (1,)
        t = torch.from_numpy(np.ascontiguousarray(array).reshape(array.shape))
    else:
        t = torch.tensor(array)
    if grad and (t.is_floating_point() or t.is_complex()):
        t.requires_grad_(True)
    return t


def _array(t):
    return None if t is None else t.detach().cpu().numpy().copy()


def _outputs(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _numpy_forward(call):
    import torch

    def forward(*arrays, **params):
        with torch.no_grad():
            out = call(*[_tensor(np.asarray(a)) for a in arrays], **params)
        outs = tuple(_array(o) for o in _outputs(out))
        return outs if isinstance(out, (tuple, list)) else outs[0]

    return forward


def _numpy_vjp(call):
    import torch

    def vjp(inputs, cotangents, **params):
        tensors = [_tensor(np.asarray(a), grad=True) for a in inputs]
        outs = _outputs(call(*tensors, **params))
        floats = [t for t in tensors if t.requires_grad]
        pairs = [(o, _tensor(np.asarray(c))) for o, c in zip(outs, cotangents) if c is not None and o.requires_grad]
        grads = torch.autograd.grad([o for o, _ in pairs], floats, [c for _, c in pairs], allow_unused=True) if pairs else [None] * len(floats)
        it = iter(grads)
        out = []
        for t in tensors:
            if not t.requires_grad:
                out.append(None)
                continue
            g = next(it)
            out.append(np.zeros(tuple(t.shape), _array(t).dtype) if g is None else _array(g))  # unused: zero gradient
        return tuple(out)

    return vjp


def _numpy_jvp(call):
    import torch

    def jvp(inputs, tangents, **params):
        tensors = [_tensor(np.asarray(a)) for a in inputs]
        which = [i for i, t in enumerate(tensors) if t.is_floating_point()]

        def of_floats(*floats):
            args = list(tensors)
            for i, f in zip(which, floats):
                args[i] = f
            return call(*args, **params)

        try:
            out, tangent = torch.func.jvp(of_floats, tuple(tensors[i] for i in which),
                                          tuple(_tensor(np.asarray(tangents[i])) for i in which))
        except (RuntimeError, NotImplementedError) as exc:
            if any(word in str(exc) for word in _NOT_OFFERED):
                raise NotOffered(str(exc).split("\n")[0]) from exc
            raise
        outs, tangents_out = _outputs(out), _outputs(tangent)
        result = tuple(_array(t) if o.is_floating_point() else None for o, t in zip(outs, tangents_out))
        return result if isinstance(out, (tuple, list)) else result[0]

    return jvp


def _second_order(call, label, dtypes, n_inputs: int) -> Mapping:
    """The map (inputs..., cotangents...) -> VJP, whose own VJP is double backward."""
    import torch

    def split(arrays, params):
        # the derived mapping's inputs: the first-order inputs, then one cotangent per float output
        tensors = [_tensor(np.asarray(a), grad=True) for a in arrays]
        inputs, cots = tensors[:n_inputs], tensors[n_inputs:]
        return inputs, _outputs(call(*inputs, **params)), cots

    def first_order(arrays, params, create_graph):
        inputs, outs, cots = split(arrays, params)
        floats = [t for t in inputs if t.requires_grad]
        pairs = [(o, c) for o, c in zip([o for o in outs if o.requires_grad], cots)]
        grads = torch.autograd.grad([o for o, _ in pairs], floats, [c for _, c in pairs], create_graph=create_graph,
                                    allow_unused=True)
        grads = [torch.zeros_like(f) if g is None else g for f, g in zip(floats, grads)]
        return inputs, cots, grads

    def forward(*arrays, **params):
        _, _, grads = first_order(arrays, params, create_graph=False)
        return tuple(_array(g) for g in grads)

    def vjp(arrays, cotangents, **params):
        inputs, cots, grads = first_order(arrays, params, create_graph=True)
        wrt = [t for t in inputs if t.requires_grad] + list(cots)
        pairs = [(g, _tensor(np.asarray(c))) for g, c in zip(grads, cotangents) if c is not None and g.requires_grad]
        try:
            second = torch.autograd.grad([g for g, _ in pairs], wrt, [c for _, c in pairs], allow_unused=True) if pairs else [None] * len(wrt)
        except RuntimeError as exc:
            if any(word in str(exc) for word in _NOT_OFFERED):
                raise NotOffered(str(exc).split("\n")[0]) from exc
            raise
        second = [np.zeros(tuple(w.shape), _array(w).dtype) if g is None else _array(g) for w, g in zip(wrt, second)]
        it = iter(second)
        return tuple(next(it) if t.requires_grad else None for t in inputs) + tuple(next(it) for _ in cots)

    return Mapping(f"{label} (backward of the backward)", forward, vjp, samples=lambda rng, dtype: [], dtypes=dtypes)
