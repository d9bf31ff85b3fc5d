"""``backprop-harness check --model cnn``: a built-in network checked end to end, once
per operator provider that has all its operators (``--provider`` narrows them), and --
where a case fails --
localised: every node checked on the activations that flowed through the network for
that case, and the node whose own forward or backward is wrong named.

Each provider's network is checked in a worker process of its own, as a task of the
executor (``-j`` at once, or on Dask with ``--scheduler``), like ``check --op``: a
provider whose operators exit, crash or hang is that provider's CRASHED or TIMEOUT.
``--in-process`` checks them here, one after another."""

from __future__ import annotations

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError

# What --model cannot take (MLP cases, a mapping's arguments, worker settings)
_NOT_FOR_MODELS = {"sizes": "--sizes", "activations": "--activations", "loss": "--loss", "batch": "--batch",
                   "kinks": "--kinks", "logit_scale": "--logit-scale", "case_file": "--case-file",
                   "save_case": "--save-case", "isolate": "--isolate", "device": "--device",
                   "mapping": "--mapping", "op": "--op", "size": "--size", "second_order": "--second-order",
                   "impl": "--impl (--model takes --provider)"}


def add_arguments(parser) -> None:
    parser.add_argument("--model", metavar="NAME",
                        help="check a built-in network end to end, per operator provider (--provider narrows them), "
                             "and name the operator whose backward is wrong: cnn")


def run(args) -> int:
    from harness.checks.mapping_trial import PROBES
    from harness.commands.check_report import Run, conclude, make_console, print_report
    from harness.networks.cnn import model
    from harness.networks.providers import network_providers

    given = [flag for attr, flag in _NOT_FOR_MODELS.items() if getattr(args, attr, None)]
    if given:
        raise UsageError(f"{given[0]} does not apply to --model")
    if args.in_process and (args.scheduler or args.timeout):
        raise UsageError(f"--in-process and {'--scheduler' if args.scheduler else '--timeout'} contradict each other "
                         "(they are for the workers that --in-process does without)")
    options.checked_outputs(args)
    network = model(args.model)
    providers, left_out = network_providers(network, list(dict.fromkeys(args.provider)) if args.provider else None)
    console = make_console()
    probes = args.probes or PROBES
    if args.in_process:
        runs, found = _checked_here(network, providers, args, probes)
    else:
        from harness.commands.check_mapping import checked_in_workers
        from harness.networks.cnn import as_plain

        targets = [({"model": as_plain(network), "provider": name}, f"{network.name}[{name}]") for name in providers]
        by_label = {label: target["provider"] for target, label in targets}
        runs, _, found = checked_in_workers(targets, args, probes, repro=lambda label, dtype: _reproduce(args, by_label[label], dtype))
    for name, why in left_out.items():
        runs.append(Run(f"{network.name}[{name}]", "", note=f"left out: {why}"))
    print_report(runs, console, detail=args.detail)
    for line in found:
        console.print(line, style="bold red", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK if conclude(runs, [f"{network.name}[{name}]" for name in providers], args.json) else EXIT_FAILED


def _checked_here(network, providers, args, probes):
    """``--in-process``: every provider's network checked in this process."""
    from harness.checks.localisation import check_chain
    from harness.checks.mapping_runner import mapping_cases
    from harness.commands.check_report import Run
    from harness.core.results import CheckResult, Verdict
    from harness.networks.end_to_end import network_mapping, node_cases

    runs, found = [], []
    for name, provider in providers.items():
        mapping = network_mapping(network, provider, provider_name=name)
        for dtype, case, why in mapping_cases(mapping, args.dtype, args.seed):
            if case is None:
                runs.append(Run(mapping.name, dtype, [CheckResult("applicable", mapping.name, dtype, Verdict.SKIP, why)]))
                continue
            checked = check_chain(mapping, lambda c, p=provider: node_cases(network, p, c), case, probes=probes)
            culprits = checked.localisation.culprits if checked.localisation is not None else []
            for r in checked.results + [r for link in culprits for r in link.results]:
                r.repro = _reproduce(args, name, dtype)  # a node's case is rebuilt by rerunning the network's
            runs.append(Run(mapping.name, case.describe(), checked.results))
            if checked.localisation is not None:
                found.append(f"{mapping.name} on {case.describe()}: {checked.localisation.summary()}")
                runs.extend(Run(f"{link.label} [{name}]", f"{case.label}, as it flowed", link.results) for link in culprits)
    return runs, found


def _reproduce(args, provider: str, dtype: str | None) -> str:
    dtype = dtype or args.dtype
    return (f"backprop-harness check --model {args.model} --provider {provider}"
            f"{f' --dtype {dtype}' if dtype else ''} --seed {args.seed}")
