"""The checker: checks as plain functions named after the property they assert, the
engine that runs them, the planner that picks the cases, and isolated runs.

Modules: ``trial`` (an implementation bound to a case), ``compare`` (the one
comparison routine), ``contracts``, ``values``, ``probes`` and ``properties`` (the
checks), ``runner`` (the list of checks and the engine), ``planner`` (which cases
run), ``isolation`` (checks in a child interpreter).
"""

from harness.checks.runner import ALL_CHECKS, check_name, run_check, run_checks
from harness.checks.trial import Trial

__all__ = ["ALL_CHECKS", "Trial", "check_name", "run_check", "run_checks"]
