"""``backprop-harness check --mapping module:attr``: every mapping check on the
mapping's sample cases (or on one case file), reported like the MLP's."""

from __future__ import annotations

from harness.commands import options
from harness.commands.errors import EXIT_FAILED, EXIT_OK, UsageError

# MLP-only arguments, and what a mapping takes instead
_NOT_FOR_MAPPINGS = {"impl": "--impl", "sizes": "--sizes", "activations": "--activations", "loss": "--loss",
                     "batch": "--batch", "kinks": "--kinks", "logit_scale": "--logit-scale", "isolate": "--isolate",
                     "save_case": "--save-case", "device": "--device", "timeout": "--timeout"}


def add_arguments(parser) -> None:
    g = parser.add_argument_group("check any mapping (harness.Mapping) instead of an MLP implementation")
    g.add_argument("--mapping", action="append", metavar="module:attr",
                   help="a harness.Mapping, or a function of no arguments returning one (repeatable)")
    g.add_argument("--size", type=_size, metavar="N", help="one random case with about N elements in the first input")
    g.add_argument("--second-order", action="store_true", help="also check the backward of the backward")


def _size(text) -> int:
    from harness.commands.options import positive_int

    return positive_int(text)


def run(args) -> int:
    from harness.checks.mapping_runner import check_mapping, mapping_cases
    from harness.checks.mapping_trial import PROBES
    from harness.commands.check_report import Run, conclude, make_console, print_report
    from harness.core.mapping import load_mapping
    from harness.core.mapping_cases import load_mapping_case
    from harness.core.results import CheckResult, Verdict

    given = [flag for attr, flag in _NOT_FOR_MAPPINGS.items() if getattr(args, attr, None)]
    if given:
        raise UsageError(f"{given[0]} applies to MLP implementations, not to --mapping")
    if args.case_file and args.size:
        raise UsageError("--case-file runs exactly that case; --size draws a new one: give one or the other")
    options.checked_outputs(args)
    mappings = [load_mapping(ref) for ref in dict.fromkeys(args.mapping)]
    case = load_mapping_case(args.case_file) if args.case_file else None
    if case is not None:
        if args.dtype and args.dtype != case.dtype:
            raise UsageError(f"--dtype {args.dtype}: the case file's float inputs are {case.dtype}; a case file runs in its own dtype")
        if args.seed:
            case.seed = args.seed  # the seed draws the cotangents and probes
    runs = []
    for mapping in mappings:
        if case is not None:
            runs.append(Run(mapping.name, case.describe(), check_mapping(mapping, case, probes=args.probes or PROBES,
                                                                          second_order=args.second_order)))
            continue
        for dtype, item, why in mapping_cases(mapping, args.dtype, args.seed, args.size):
            if item is None:
                run = Run(mapping.name, dtype, note=why)
                run.results.append(CheckResult("applicable", mapping.name, dtype, Verdict.FAIL, f"asked for, but {why}"))
                runs.append(run)
                continue
            runs.append(Run(mapping.name, item.describe(), check_mapping(mapping, item, probes=args.probes or PROBES,
                                                                          second_order=args.second_order)))
    console = make_console()
    print_report(runs, console, detail=args.detail or case is not None)
    return EXIT_OK if conclude(runs, [m.name for m in mappings], args.json) else EXIT_FAILED
