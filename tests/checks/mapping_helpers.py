"""Shared by the mapping check tests: a trial of a mapping on one of its sample cases."""

import dataclasses

from harness.checks.mapping_trial import MappingTrial
from harness.core.mapping_cases import sample_cases


def trial_for(mapping, dtype="float64", label="random", **kwargs):
    case = next(c for c in sample_cases(mapping, dtype) if c.label == label)
    return MappingTrial(mapping, case, **kwargs)


def variant(mapping, **changes):
    """``mapping`` with some functions swapped (a broken variant), named after it."""
    return dataclasses.replace(mapping, name=f"{mapping.name} (variant)", **changes)


def case_of(mapping, *inputs, dtype="float64", label="given"):
    """A trial of ``mapping`` on exactly ``inputs``."""
    from harness.core.mapping_cases import make_case

    return MappingTrial(mapping, make_case(inputs, mapping.params, dtype, 0, label))
