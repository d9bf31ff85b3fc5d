"""The checker: checks as plain functions named after the property they assert, the
engine that runs them, and the planner that picks the cases. The checks judge
whatever ``Implementation`` they are given; one that runs in a worker process
(``harness.workers``) is judged here all the same.

Modules: ``trial`` (an implementation bound to a case), ``compare`` (the one
comparison routine), ``contracts``, ``values``, ``probes`` and ``properties`` (the
checks), ``runner`` (the list of checks and the engine), ``planner`` (which cases
run).
"""

from harness.checks.runner import ALL_CHECKS, check_name, run_check, run_checks
from harness.checks.trial import Trial

__all__ = ["ALL_CHECKS", "Trial", "check_name", "run_check", "run_checks"]
