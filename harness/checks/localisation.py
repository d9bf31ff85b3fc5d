"""Localisation in a chain of mappings: when the whole chain's check fails on a case,
check each link on the inputs that actually flowed into it for that case, and name
the links whose own checks fail.

The chain is given as a mapping (checked end to end) and a function ``parts(case)``
giving ``(label, mapping, case)`` for every link on that case, so this module knows
nothing of how a network is built (``harness.networks`` makes both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.checks.mapping_jvp import check_jvp_matches_oracle
from harness.checks.mapping_runner import MAPPING_CHECKS, check_mapping
from harness.checks.mapping_trial import PROBES
from harness.checks.mapping_values import check_vjp_matches_oracle
from harness.core.mapping import Mapping
from harness.core.mapping_cases import MappingCase
from harness.core.results import CheckResult

# The element-by-element comparisons cost 8 forwards per input element; the rest (the
# contracts, the forward, the random probes with the all-ones direction) a few calls.
ELEMENTWISE = (check_vjp_matches_oracle, check_jvp_matches_oracle)
QUICK_CHECKS = tuple(c for c in MAPPING_CHECKS if c not in ELEMENTWISE)


@dataclass
class Link:
    """One link's checks on the inputs that flowed into it."""

    label: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed_checks(self) -> list[str]:
        return [r.check for r in self.results if not r.ok]


@dataclass
class Localisation:
    """What checking every link found: the links whose own checks fail are the culprits."""

    links: list[Link] = field(default_factory=list)

    @property
    def culprits(self) -> list[Link]:
        return [link for link in self.links if not link.ok]

    def summary(self) -> str:
        if self.culprits:
            named = "; ".join(f"{link.label}: {', '.join(link.failed_checks)}" for link in self.culprits)
            return f"localised to {named}"
        return ("every operator passes its own checks on the activations that flowed: what is wrong is how the chain "
                "joins them (a gradient handed to the wrong node, or one node's error only visible in combination)")


@dataclass
class ChainCheck:
    """One end-to-end case: the whole chain's results and, where they fail, the localisation."""

    case: MappingCase
    results: list[CheckResult]
    localisation: Localisation | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def localise(parts, *, probes: int = PROBES) -> Localisation:
    """The links ``(label, mapping, case)`` checked in two passes: the quick checks on
    every link, then every check on the links the quick ones flagged -- or, where they
    flagged none, on every link (an error the probes missed is still found)."""
    parts = list(parts)
    quick = [Link(label, check_mapping(mapping, case, probes=probes, checks=QUICK_CHECKS))
             for label, mapping, case in parts]
    flagged = [i for i, link in enumerate(quick) if not link.ok] or range(len(parts))
    links = list(quick)
    for i in flagged:
        label, mapping, case = parts[i]
        links[i] = Link(label, check_mapping(mapping, case, probes=probes))
    return Localisation(links)


def check_chain(mapping: Mapping, parts, case: MappingCase, *, probes: int = PROBES) -> ChainCheck:
    """Every check of the chain ``mapping`` on ``case``; if one fails, every link on
    the inputs that flowed for this case (``parts(case)``), so that the report names
    the link whose own forward or backward is wrong."""
    results = check_mapping(mapping, case, probes=probes)
    checked = ChainCheck(case, results)
    if not checked.ok:
        checked.localisation = localise(parts(case.copy()), probes=probes)
    return checked
