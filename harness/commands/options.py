"""Command-line options shared by the subcommands: value types that name the bad text
and what was expected, and the arguments (with their choices and defaults) that
several subcommands take, each defined once."""

from __future__ import annotations

import argparse
import math

from harness.core.spec import DTYPES, LOSSES, SEED_SPEC, NetworkSpec

DEFAULT_LOSS = "cross_entropy"
DEFAULT_SIZES = ",".join(map(str, SEED_SPEC.sizes))


def _number(text, kind, word):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {word}") from None


def positive_int(text) -> int:
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def positive_float(text) -> float:
    value = _number(text, float, "a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{value} is not a finite number > 0")
    return value


def unit_interval(text) -> float:
    """A number in [0, 1), such as a momentum."""
    value = _number(text, float, "a number")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 1)")
    return value


def positive_ints(text) -> list[int]:
    """Comma-separated integers >= 1, such as batch sizes ``1,64,256``."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 1,64,256") from None
    bad = [v for v in values if v < 1]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: batch sizes must be >= 1, got {bad[0]}")
    return values


def add_impl(parser, help="repeatable; default every available one") -> None:
    parser.add_argument("--impl", action="append", metavar="NAME|module:attr", help=help)


def add_loss(parser, *, default=None, help=None) -> None:
    parser.add_argument("--loss", choices=LOSSES, default=default, help=help or f"default {DEFAULT_LOSS}")


def add_dtype(parser, *, default=None, repeatable=False, help=None) -> None:
    parser.add_argument("--dtype", choices=DTYPES, default=default, action="append" if repeatable else "store", help=help)


def add_seed(parser, what: str) -> None:
    parser.add_argument("--seed", type=int, default=0, help=f"seed for {what} (default 0)")


def add_device(parser) -> None:
    parser.add_argument("--device", help="device to run on (default: the implementation's own)")


def add_workers(parser, *, jobs: bool = False) -> None:
    """Where implementations run: a worker process each (the default), or this one."""
    from harness.workers.remote import DEFAULT_TIMEOUT

    parser.add_argument("--in-process", action="store_true",
                        help="run implementations inside the harness's own process (debugging, profiling): "
                             "one that crashes, exits or hangs then takes the harness with it")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help=f"time limit for each call into a worker: loading, prepare, each step (default {DEFAULT_TIMEOUT:g})")
    if jobs:
        parser.add_argument("-j", "--jobs", type=positive_int, metavar="N",
                            help="workers running at once (default: the number of cores)")


def network(sizes: str, activations: str | None, loss: str | None) -> NetworkSpec:
    """The network the options describe; without activations, ReLU in every hidden
    layer and identity at the output (the seed's choice)."""
    n_layers = sizes.count(",")
    activations = activations or ",".join(["relu"] * (n_layers - 1) + ["identity"])
    return NetworkSpec.parse(sizes, activations, loss or DEFAULT_LOSS)


def implementations(names):
    """``(implementations, named)``: those ``--impl`` names (each must resolve), or
    every available one (``named`` False)."""
    import warnings

    from harness.core.registry import available, resolve

    if names:
        return [resolve(n) for n in dict.fromkeys(names)], True
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return list(available().values()), False
