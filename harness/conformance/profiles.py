"""Hypothesis profiles for the conformance suite: ``dev``, ``ci`` and ``thorough``.

Chosen by ``HYPOTHESIS_PROFILE``; when it is unset, ``ci`` where the ``CI``
variable is set and ``dev`` elsewhere. The conformance tests apply the chosen
profile to themselves only (``conformance_settings``), so a project that loads the
plugin keeps its own hypothesis settings for its own tests.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = ("dev", "ci", "thorough")

# No deadline anywhere: an implementation's first call may compile (torch.compile
# takes seconds per shape on a CPU), and speed is the benchmarks' business, not a
# correctness verdict. too_slow is suppressed for the same reason.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("dev", max_examples=10, **_COMMON)
# Hypothesis registers its own "ci" and loads it when CI is set; this one replaces it,
# so it restates what makes a CI run reproducible: the same examples every run (and
# on every pytest-xdist worker), no example database, no deadline.
settings.register_profile("ci", max_examples=30, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=300, **_COMMON)


def active_profile() -> str:
    """The profile name the environment selects (see the module docstring)."""
    name = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    if not name:
        return "ci" if os.environ.get("CI") else "dev"
    return name


def conformance_settings() -> settings:
    """The selected profile's settings; a profile the project registered itself is
    accepted too."""
    name = active_profile()
    try:
        return settings.get_profile(name)
    except Exception:
        raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: no such hypothesis profile; expected one of {', '.join(PROFILES)}") from None
