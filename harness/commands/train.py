"""The ``train`` subcommand: train implementations side by side and compare their
trajectories with ``numpy``'s. Exit 0 when every run finishes and stays within the
trajectory tolerance, 1 when one errs or drifts, 2 on bad input."""

from __future__ import annotations

import dataclasses

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.commands.options import positive_float, positive_int, unit_interval
from harness.training.loop import TrainConfig

# The library's defaults (see TrainConfig) plus the network's hidden part.
DEFAULTS = {
    **{f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in ("lr", "momentum", "epochs", "batch_size")},
    "hidden": "500",
    "activation": "relu",
}


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train implementations with SGD and compare their trajectories with numpy's")
    options.add_impl(p, help="repeatable; default every available one whose step is within its declared max_multiply_adds "
                            "(pure-python is left out)")
    p.add_argument("--model", metavar="NAME", help="train a built-in network instead of the MLP: cnn (conv2d, relu, "
                   "max_pool2d, linear, cross_entropy), with every operator provider side by side")
    p.add_argument("--data", default="digits", help="digits (8x8, inside scikit-learn; default) or mnist (needs --data-dir)")
    p.add_argument("--data-dir", metavar="DIR", help="directory with MNIST's four IDX files (plain or .gz)")
    p.add_argument("--hidden", default=DEFAULTS["hidden"], help="hidden layer widths, e.g. 500 or 256,128 (default 500)")
    p.add_argument("--activation", default=DEFAULTS["activation"], help="hidden activation(s), one or one per hidden layer (default relu)")
    options.add_loss(p, default=options.DEFAULT_LOSS, help=f"default {options.DEFAULT_LOSS} (MSE trains on one-hot targets)")
    p.add_argument("--lr", type=positive_float, default=DEFAULTS["lr"], help=f"learning rate (default {DEFAULTS['lr']})")
    p.add_argument("--momentum", type=unit_interval, default=DEFAULTS["momentum"], help=f"0 for plain SGD (default {DEFAULTS['momentum']})")
    p.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"], help=f"default {DEFAULTS['epochs']}")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULTS["batch_size"], help=f"default {DEFAULTS['batch_size']}; the last incomplete batch of an epoch is dropped")
    options.add_dtype(p, default="float64", help="default float64")
    options.add_seed(p, "the split, the initialisation and the batch order")
    options.add_device(p)
    p.add_argument("--threads", type=options.threads, default=1,
                   help="threads for numpy's BLAS and torch (default 1: two pools in one process fight)")
    options.add_workers(p)
    options.add_executor(p, what="trainings", default="1: each training's times are then its own, not shared with "
                         "another's on the same cores; with more, the report says so")
    p.add_argument("--json", metavar="FILE", help="write every run (accuracy, losses, divergence, timings) as strict JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the loss and test-accuracy curves of every implementation")
    p.set_defaults(func=run)


def network_spec(args, n_features: int, n_classes: int):
    """``n_features``-hidden...-``n_classes``: the input width follows the data."""
    from harness.core.spec import NetworkSpec

    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        raise ValueError(f"--hidden {args.hidden!r}: expected comma-separated integers such as 500 or 256,128") from None
    names = tuple(a.strip() for a in args.activation.split(","))
    if len(names) == 1:
        names = names * len(hidden)
    if len(names) != len(hidden):
        raise ValueError(f"--activation {args.activation!r}: expected one, or one per hidden layer ({len(hidden)})")
    return NetworkSpec((n_features, *hidden, n_classes), (*names, "identity"), args.loss)


def selected_implementations(names, spec, dtype, device, batch_size, where=None, threads=None):
    """(implementations to train, {name: why left out}, implementations that could not
    start). Named ones must be usable; of the others, those whose step exceeds their
    declared ``max_multiply_adds`` are left out. In workers (``where``), the built-in
    ``numpy`` is not started: it trains in the harness's process as the reference
    (the judge's own yardstick), as it does when not named."""
    from harness.checks.planner import left_out
    from harness.commands import running
    from harness.core.protocol import availability
    from harness.impls.numpy_impl import NumpyImplementation

    where = where or running.Placement(in_process=True)
    impls, named = running.select(names, where, threads=threads, pin=True, judged=False)
    impls = [NumpyImplementation() if getattr(i, "label", None) == "numpy" and i.name == "numpy" else i for i in impls]
    impls, failures = running.start(impls, where)
    chosen, skipped = [], {}
    for impl in impls:
        if named:
            reason = availability(impl, device) or impl.capabilities.unsupported(spec, dtype)
            if reason:
                raise ValueError(f"--impl {impl.name}: cannot train {spec.describe()} in {dtype}: {reason}")
            chosen.append(impl)
            continue
        reason = left_out(impl, spec, dtype, batch_size, device=device)
        if reason:
            skipped[impl.name] = reason + ("; name it with --impl" if impl.capabilities.too_slow(spec, batch_size) else "")
            running.close([impl])
        else:
            chosen.append(impl)
    return chosen, skipped, failures


def run(args) -> int:
    import sys

    from harness.core.memory import require, train_bytes
    from harness.core.results import printable
    from harness.speed.timing import pin_threads
    from harness.training.datasets import load_dataset
    from harness.training.loop import TrainingRun
    from harness.training.report import (
        plot_curves,
        problems,
        summary_table,
        training_progress,
        wide_console,
        write_json,
    )

    if args.model:
        from harness.commands import train_network

        return train_network.run(args)
    options.checked_outputs(args)
    options.checked_scheduler(args)
    dataset = load_dataset(args.data, args.data_dir, seed=args.seed)
    n_train = len(dataset.y_train)
    if args.batch_size > n_train:
        raise ValueError(f"--batch-size {args.batch_size}: larger than the {n_train} training samples of {args.data}")
    spec = network_spec(args, dataset.n_features, dataset.n_classes)
    require(train_bytes(spec, args.batch_size, len(dataset.y_test)), f"training {spec.describe()} at batch {args.batch_size}")
    config = TrainConfig(spec, lr=args.lr, momentum=args.momentum, epochs=args.epochs, batch_size=args.batch_size,
                         seed=args.seed, dtype=args.dtype, device=args.device)
    from harness.commands import running

    where = running.placement(args)
    if args.scheduler and where.in_process:
        raise UsageError("--scheduler and --in-process contradict each other (tasks run their implementations in workers)")
    args.jobs = args.jobs or 1
    impls, skipped, failures = selected_implementations(args.impl, spec, args.dtype, args.device, args.batch_size,
                                                        where, args.threads)
    if not impls and not failures:
        reason = "nothing to train: " + ("; ".join(f"{name} {why}" for name, why in skipped.items()) or "no implementation")
        if args.json:
            write_json([], args.json, _config_record(args, spec, dataset), ok=False, reason=reason)
        print(f"backprop-harness: {printable(reason)}", file=sys.stderr)
        return EXIT_FAILED
    pin_threads(args.threads)  # the reference trains here, and the harness judges here

    console = wide_console()
    title = (f"train {spec.describe()} on {dataset.describe()}; SGD lr {args.lr} momentum {args.momentum}, "
             f"{args.epochs} epochs of {config.steps_per_epoch(n_train)} batches of {args.batch_size}, {args.dtype}, seed {args.seed}")
    console.print(title)
    # the reference and its twin train first, alone; the others as tasks, -j at once
    tasks = 0 if where.in_process else sum(not _trains_here(impl) for impl in impls)
    at_once = "dask" if args.scheduler and tasks else min(args.jobs, max(tasks, 1))
    if at_once != 1:
        console.print(f"{'on Dask, maybe several' if at_once == 'dask' else at_once} trainings at once: their times are "
                      "measured while they share the cores, not alone", style="yellow")
    with training_progress(console, config.epochs, config.steps_per_epoch(n_train)) as (on_start, on_step):
        try:
            runs = _train_all(impls, dataset, config, args, where, on_start, on_step)
        finally:
            running.close(impls)
    runs += [TrainingRun(running.display_name(impl), args.dtype, error=f"{verdict.value}: {message}")
             for impl, verdict, message in failures]
    console.print(summary_table(runs, "training", skipped))
    for line in problems(runs):
        console.print(line, style="red", soft_wrap=True, markup=False, highlight=False)
    if args.json:
        write_json(runs, args.json, {**_config_record(args, spec, dataset), "trainings_at_once": at_once})
    if args.plot:
        plot_curves(runs, args.plot, title=f"{spec.describe()} on {dataset.name}, {args.dtype}")
    return EXIT_OK if all(r.ok for r in runs) else EXIT_FAILED


def _train_all(impls, dataset, config, args, where, on_start, on_step):
    """The reference (and its rounding twin) trained here, then every other
    implementation as a task through the executor, each measured against the
    reference: ``-j`` threads of the harness lent the live workers that were started
    to choose them (the default, one at a time), or Dask (``--scheduler``), where each
    task starts its worker. ``--in-process``: all here, one after another."""
    from harness.core.containment import watching_interrupts
    from harness.executors.engine import run_tasks
    from harness.executors.tasks import worker_spec
    from harness.executors.training import TrainTask, run_train_task, train_on
    from harness.training.loop import TrainingRun, judged_by_twin, train_and_compare

    if where.in_process:
        return train_and_compare(impls, dataset, config, on_step=on_step, on_start=on_start)
    others = [impl for impl in impls if not _trains_here(impl)]
    runs = train_and_compare([i for i in impls if i not in others], dataset, config, on_step=on_step, on_start=on_start)
    tasks = [TrainTask(worker_spec(impl), dataset, config, runs[0], timeout=where.timeout, threads=args.threads)
             for impl in others]
    lent = {id(task): impl for task, impl in zip(tasks, others)}

    def lend(task):
        on_start(lent[id(task)].name)
        return train_on(lent[id(task)], task, on_step=on_step)

    # as train_and_compare: the user's Ctrl-C told from a plug-in's KeyboardInterrupt
    with watching_interrupts(), options.engine(args, lending=not args.scheduler) as engine:
        runs += run_tasks(engine, run_train_task if args.scheduler else lend, tasks, [impl.name for impl in others],
                          lost_as=lambda name, why: TrainingRun(name, config.dtype, error=f"INFRA_ERROR: {why}"))
    return judged_by_twin(runs)


def _trains_here(impl) -> bool:
    from harness.impls.numpy_impl import NumpyImplementation

    return isinstance(impl, NumpyImplementation)  # the reference (selected_implementations)


def _config_record(args, spec, dataset):
    return {
        "data": dataset.describe(),
        "network": spec.describe(),
        "lr": args.lr,
        "momentum": args.momentum,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "seed": args.seed,
    }
