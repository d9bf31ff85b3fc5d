"""``backprop-harness train --model cnn``: a built-in network trained with every operator
provider that has all its operators (and, where torch is installed, the same network
written directly in PyTorch), side by side with the numpy chain as the reference, under
the MLP's trajectory rule. Exit 0 when every run finishes within the tolerance."""

from __future__ import annotations

import math

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.networks.torch_cnn import TORCH_CNN  # the network written in torch.nn.functional, one autograd graph

REFERENCE = "numpy"
# MLP-only arguments and their defaults: given otherwise, they are refused
_MLP_ONLY = {"hidden": ("--hidden", "500"), "activation": ("--activation", "relu"), "loss": ("--loss", "cross_entropy"),
             "device": ("--device", None)}


def trainee_names(network, names) -> tuple[list, dict, dict]:
    """``([name], {name: why left out}, {name: OpsProvider})``: the numpy chain first,
    the reference (it always trains)."""
    import importlib.util

    from harness.networks.providers import network_providers

    wanted = list(dict.fromkeys(names)) if names else None
    has_torch = importlib.util.find_spec("torch") is not None
    chain_names = None if wanted is None else [n for n in wanted if n != TORCH_CNN]
    providers, left_out = network_providers(network, sorted({REFERENCE, *chain_names}) if chain_names is not None else None,
                                            flag="--impl")
    if REFERENCE not in providers:
        raise ValueError(f"the reference provider {REFERENCE!r} cannot run {network.name}: {left_out.get(REFERENCE, 'not registered')}")
    chosen = [REFERENCE] + [name for name in providers if name != REFERENCE and (wanted is None or name in wanted)]
    if wanted is None or TORCH_CNN in wanted:
        if has_torch:
            chosen.append(TORCH_CNN)
        elif wanted:
            raise ValueError(f"--impl {TORCH_CNN}: torch is not installed")
        else:
            left_out[TORCH_CNN] = "torch is not installed"
    return chosen, left_out, providers


def trainees(network, names, threads: int):
    """``([Trainee], {name: why left out}, reference provider)``: the numpy chain first,
    each trainee's step built here (``--in-process``)."""
    from harness.networks.steps import chain_step
    from harness.networks.torch_cnn import torch_cnn_step
    from harness.training.network_loop import Trainee

    chosen, left_out, providers = trainee_names(network, names)
    return ([Trainee(name, torch_cnn_step(network, threads) if name == TORCH_CNN else chain_step(network, providers[name]))
             for name in chosen], left_out, providers[REFERENCE])


def run(args) -> int:
    import sys

    from threadpoolctl import threadpool_limits

    from harness.networks.cnn import model
    from harness.networks.steps import chain_accuracy
    from harness.training.datasets import load_dataset
    from harness.training.network_loop import NetworkTraining, train_side_by_side
    from harness.training.report import (
        plot_curves,
        problems,
        summary_table,
        training_progress,
        wide_console,
        write_json,
    )

    given = [flag for attr, (flag, default) in _MLP_ONLY.items() if getattr(args, attr, None) != default]
    if given:
        raise UsageError(f"{given[0]} applies to the MLP, not to --model {args.model}")
    options.checked_outputs(args)
    options.checked_scheduler(args)
    dataset = load_dataset(args.data, args.data_dir, seed=args.seed)
    side = math.isqrt(dataset.n_features)
    if side * side != dataset.n_features:
        raise ValueError(f"--data {args.data}: {dataset.n_features} features are not a square image")
    network = model(args.model, image=side)
    if args.batch_size > len(dataset.y_train):
        raise ValueError(f"--batch-size {args.batch_size}: larger than the {len(dataset.y_train)} training samples of {args.data}")
    if args.scheduler and args.in_process:
        raise UsageError("--scheduler and --in-process contradict each other (tasks train away from the harness)")
    if args.timeout and args.in_process:
        raise UsageError("--timeout needs trainees trained as tasks, not --in-process (a hang can only be cut short in "
                         "another process)")
    chosen, left_out, providers = trainee_names(network, args.impl)
    setup = NetworkTraining(network.initial_parameters(args.seed), chain_accuracy(network, providers[REFERENCE]), args.lr,
                            args.momentum, args.epochs, args.batch_size, args.seed, args.dtype)
    console = wide_console()
    steps = setup.steps_per_epoch(len(dataset.y_train))
    console.print(f"train {network.name} ({' -> '.join(n.op for n in network.nodes)}) on {dataset.describe()}; "
                  f"SGD lr {args.lr} momentum {args.momentum}, {args.epochs} epochs of {steps} batches of "
                  f"{args.batch_size}, {args.dtype}, seed {args.seed}")
    at_once = "dask" if args.scheduler and len(chosen) > 1 else min(args.jobs or 1, max(len(chosen) - 1, 1))
    if at_once != 1:
        console.print(f"{'on Dask, maybe several' if at_once == 'dask' else at_once} trainings at once: their times are "
                      "measured while they share the cores, not alone", style="yellow")
    with threadpool_limits(args.threads), training_progress(console, args.epochs, steps) as (on_start, on_step):
        if args.in_process:
            runs = train_side_by_side(trainees(network, args.impl, args.threads)[0], dataset, setup, on_step=on_step,
                                      on_start=on_start)
        else:
            runs = _train_as_tasks(network, chosen, providers[REFERENCE], dataset, setup, args, on_step, on_start)
    console.print(summary_table(runs, "training", left_out))
    for line in problems(runs):
        console.print(line, style="red", soft_wrap=True, markup=False, highlight=False)
    record = {"data": dataset.describe(), "network": network.name, "lr": args.lr, "momentum": args.momentum,
              "epochs": args.epochs, "batch_size": args.batch_size, "dtype": args.dtype, "seed": args.seed}
    if args.json:
        write_json(runs, args.json, {**record, "trainings_at_once": at_once})
    if args.plot:
        plot_curves(runs, args.plot, title=f"{network.name} on {dataset.name}, {args.dtype}")
    if not all(r.ok for r in runs):
        print("backprop-harness: a training run failed or left the reference's trajectory", file=sys.stderr)
    return EXIT_OK if all(r.ok for r in runs) else EXIT_FAILED


def _train_as_tasks(network, chosen, reference, dataset, setup, args, on_step, on_start):
    """The reference (its provider ``reference``, and its rounding twin) trained here, then every other trainee as a
    task through the executor: ``-j`` local pool processes (default 1) or Dask
    (``--scheduler``); each task builds its trainee's step where it runs."""
    import dataclasses

    from harness.core.containment import watching_interrupts
    from harness.executors.engine import run_tasks
    from harness.executors.training import NetworkTrainTask, run_network_train_task
    from harness.networks.cnn import as_plain
    from harness.networks.steps import chain_step
    from harness.training.loop import TrainingRun, judged_by_twin
    from harness.training.network_loop import Trainee, train_side_by_side
    from harness.workers.remote import DEFAULT_TIMEOUT

    runs = train_side_by_side([Trainee(REFERENCE, chain_step(network, reference))], dataset, setup,
                              on_step=on_step, on_start=on_start)
    others = chosen[1:]
    plain, bare = as_plain(network), dataclasses.replace(setup, accuracy=None)
    tasks = [NetworkTrainTask(name, plain, dataset, bare, runs[0], REFERENCE, args.threads, args.timeout or DEFAULT_TIMEOUT)
             for name in others]

    def lost(name, why):
        return TrainingRun(name, setup.dtype, error=f"INFRA_ERROR: the executor lost the task twice ({why}); the "
                                                     "trainee runs in a process the task starts, so this is not its doing")

    args.jobs = args.jobs or 1
    with watching_interrupts(), options.engine(args) as engine:
        runs += run_tasks(engine, run_network_train_task, tasks, others, lost_as=lost)
    return judged_by_twin(runs)
