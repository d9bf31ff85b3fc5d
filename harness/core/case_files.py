"""Case files: one ``.npz`` per case, so a failure can be rerun exactly and other tools
can hand the checker their own inputs. Only plain arrays are read (no pickles)."""

from __future__ import annotations

import numpy as np

from harness.core.cases import Case, check_dtype
from harness.core.spec import NetworkSpec


def save_case(case: Case, path) -> None:
    """Write ``case`` as one ``.npz``: ``sizes``, ``activations``, ``loss``, ``W0``,
    ``b0``, ``W1``, ..., ``x``, ``y`` (and ``seed`` when known)."""
    arrays = {
        "sizes": np.array(case.spec.sizes, np.int64),
        "activations": np.array(case.spec.activations),
        "loss": np.array(case.spec.loss),
        "x": case.x,
        "y": case.y,
    }
    for i, (W, b) in enumerate(case.params):
        arrays[f"W{i}"], arrays[f"b{i}"] = W, b
    if case.seed is not None:
        arrays["seed"] = np.array(case.seed, np.int64)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_case(path) -> Case:
    """Read a case written by ``save_case`` (or by anyone, with the same keys); it runs
    in the dtype of its arrays. Problems raise ``ValueError`` naming the file and key."""
    try:
        return _load_case(path)
    except ValueError as exc:
        if f"case file {path}:" in str(exc):
            raise
        raise ValueError(f"case file {path}: {exc}") from None  # numpy's or a check's words, with the file


def read_npz(path):
    """``np.load`` of a case file, plain arrays only; a missing or unreadable file
    raises ``ValueError`` naming it."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"case file {path}: no such file") from None
    except Exception as exc:
        raise ValueError(f"case file {path}: not a readable .npz ({type(exc).__name__}: {exc})") from None


def _load_case(path) -> Case:
    with read_npz(path) as data:
        missing = [k for k in ("sizes", "activations", "loss", "x", "y") if k not in data.files]
        if missing:
            raise ValueError(f"case file {path}: missing key(s) {', '.join(missing)}; expected sizes, activations, loss, W0, b0, ..., x, y")
        spec = NetworkSpec(
            tuple(int(s) for s in data["sizes"]),
            tuple(str(a) for a in np.atleast_1d(data["activations"])),
            str(data["loss"]),
        )
        params = []
        for i, ((w_shape, b_shape)) in enumerate(spec.shapes()):
            for key, shape in ((f"W{i}", w_shape), (f"b{i}", b_shape)):
                if key not in data.files:
                    raise ValueError(f"case file {path}: missing key {key} (sizes {spec.sizes} need W0..W{spec.n_layers - 1}, b0..b{spec.n_layers - 1})")
                if data[key].shape != shape:
                    raise ValueError(f"case file {path}: {key} has shape {data[key].shape}, expected {shape}")
            params.append((data[f"W{i}"], data[f"b{i}"]))
        x, y = data["x"], data["y"]
        seed = int(data["seed"]) if "seed" in data.files else None
    dtype = x.dtype.name
    check_dtype(dtype)
    if x.ndim != 2 or x.shape[1] != spec.sizes[0]:
        raise ValueError(f"case file {path}: x has shape {x.shape}, expected (N, {spec.sizes[0]})")
    for i, (W, b) in enumerate(params):
        if W.dtype != x.dtype or b.dtype != x.dtype:
            raise ValueError(f"case file {path}: W{i}/b{i} are {W.dtype}/{b.dtype}, expected {dtype} like x")
    if spec.loss == "cross_entropy":
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise ValueError(f"case file {path}: y is {y.dtype} {y.shape}, expected integer labels of shape ({x.shape[0]},)")
        if y.size and (y.min() < 0 or y.max() >= spec.sizes[-1]):
            raise ValueError(f"case file {path}: labels must lie in 0..{spec.sizes[-1] - 1}, found {y.min()}..{y.max()}")
        y = y.astype(np.int64)
    elif y.shape != (x.shape[0], spec.sizes[-1]) or y.dtype != x.dtype:
        raise ValueError(f"case file {path}: y is {y.dtype} {y.shape}, expected {dtype} ({x.shape[0]}, {spec.sizes[-1]})")
    return Case(spec, tuple(params), x, y, seed, f"from {path}", f"--case-file {path}")
