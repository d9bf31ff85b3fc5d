"""Command-line options shared by the subcommands: value types that name the bad text
and what was expected, and the arguments (with their choices and defaults) that
several subcommands take, each defined once."""

from __future__ import annotations

import argparse
import math

from harness.commands.errors import UsageError
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


def integer_in(low: int, high: int, what: str = ""):
    """An integer type for argparse accepting ``low..high`` (inclusive)."""

    def convert(text) -> int:
        value = _number(text, int, "an integer")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high:,}" + (f" ({what})" if what else ""))
        return value

    convert.__name__ = f"integer in {low}..{high}"
    return convert


MAX_SEED = 2**63 - 1  # what numpy's generators, case files and child interpreters all take
MAX_SECONDS = 86400.0  # a day: longer is a mistake (and overflows some timers)
seed = integer_in(0, MAX_SEED, "a seed, 0..2**63-1")
threads = integer_in(1, 1024, "threads per pool")
probes = integer_in(1, 10_000, "random directional probes; 0 would judge nothing")


def seconds(text) -> float:
    """A finite duration > 0 and at most a day."""
    value = positive_float(text)
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{value:g} is more than a day ({MAX_SECONDS:g} s)")
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
    parser.add_argument("--seed", type=seed, default=0, help=f"seed for {what} (default 0; 0..2**63-1)")


OUTPUT_KINDS = {"json": "json", "plot": "png", "save_case": "npz"}


def checked_outputs(args) -> None:
    """Check every output path ``args`` holds before any work, and make it absolute (a
    plug-in that changes the working directory cannot move it): the folder exists and
    is writable, the path is no directory, and an existing file is replaced only if
    the harness wrote it (``harness.core.output_files``)."""
    from harness.core.output_files import check_output_path

    seen = {}
    for attribute, kind in OUTPUT_KINDS.items():
        value = getattr(args, attribute, None)
        if value is None:
            continue
        option = f"--{attribute.replace('_', '-')}"
        if kind == "png" and not value.lower().endswith(".png"):
            raise UsageError(f"{option} {value!r}: expected a .png file name")
        path = check_output_path(value, option=option, kind=kind)
        if path in seen:
            raise UsageError(f"{option} {value}: the same file as {seen[path]}; give each output its own file")
        seen[path] = option
        setattr(args, attribute, path)


def add_device(parser) -> None:
    parser.add_argument("--device", help="device to run on (default: the implementation's own)")


def add_workers(parser, *, jobs: bool = False) -> None:
    """Where implementations run: a worker process each (the default), or this one."""
    from harness.workers.remote import DEFAULT_TIMEOUT

    parser.add_argument("--in-process", action="store_true",
                        help="run implementations inside the harness's own process (debugging, profiling): "
                             "one that crashes, exits or hangs then takes the harness with it")
    parser.add_argument("--timeout", type=seconds, metavar="SECONDS",
                        help=f"time limit for each call into a worker: loading, prepare, each step (default {DEFAULT_TIMEOUT:g})")
    if jobs:
        parser.add_argument("-j", "--jobs", type=positive_int, metavar="N",
                            help="workers running at once (default: the number of cores)")


def add_executor(parser, *, what: str = "tasks", default: str = "the number of cores") -> None:
    """Where tasks run: local pool processes (``-j``), or Dask (``--scheduler``)."""
    parser.add_argument("-j", "--jobs", type=positive_int, metavar="N",
                        help=f"{what} running at once (default: {default}; with --scheduler local, the "
                             "cluster's workers; a remote cluster has its own)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                        help="run the tasks on Dask: a scheduler's address, or 'local' for a cluster on this machine "
                             "(pip install 'backprop-harness[dask]')")


def checked_scheduler(args) -> None:
    """A ``--scheduler`` that cannot be used is a ``UsageError`` before any work (a
    bad address, Dask missing); an unreachable one is found when the engine opens."""
    if getattr(args, "scheduler", None):
        from harness.executors.engine import SchedulerError, check_scheduler

        try:
            check_scheduler(args.scheduler)
        except SchedulerError as exc:
            raise UsageError(str(exc)) from None


def engine(args, *, lending: bool = False):
    """The executor ``add_executor``'s options ask for (a context manager; ``lending``:
    see ``open_engine``); a scheduler that cannot be used is a ``UsageError``."""
    from harness.executors.engine import SchedulerError, open_engine
    from harness.workers.pool import default_jobs

    try:
        return open_engine(args.jobs or default_jobs(), args.scheduler, lending=lending)
    except SchedulerError as exc:
        raise UsageError(str(exc)) from None


def refuse_undeclared_device(impls, named: bool, device: str | None) -> None:
    """An implementation named with ``--impl`` must declare ``--device`` (one only
    discovered is left out instead, with the reason, by the planner)."""
    if not named or device is None:
        return
    for impl in impls:
        if device.split(":")[0] not in impl.capabilities.devices:
            raise UsageError(f"--device {device}: {impl.name} does not declare it (declares {', '.join(impl.capabilities.devices)})")


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
