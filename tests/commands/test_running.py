"""Where the subcommands run implementations: workers unless --in-process, names
checked without importing anything, cmd: programs, and what could not start."""

import argparse
import sys

import pytest

from harness.commands import running
from harness.commands.errors import UsageError
from harness.core.protocol import ImplementationError
from harness.core.results import Verdict
from harness.workers.remote import DEFAULT_TIMEOUT, WorkerImplementation

WORKERS = running.Placement(timeout=30.0, jobs=2)


def args(**kwargs):
    return argparse.Namespace(**{"in_process": False, "timeout": None, "isolate": False, "jobs": None, **kwargs})


def test_the_default_is_workers_with_the_default_time_limit_and_a_job_per_core():
    where = running.placement(args(), jobs=True)
    assert not where.in_process and where.timeout == DEFAULT_TIMEOUT and where.jobs >= 1
    assert running.placement(args(jobs=3), jobs=True).jobs == 3
    assert running.placement(args(jobs=3)).jobs == 1  # a subcommand without -j runs one at a time


@pytest.mark.parametrize(("given", "words"), [
    ({"in_process": True, "isolate": True}, "--in-process and --isolate contradict each other"),
    ({"in_process": True, "timeout": 5.0}, "--timeout needs workers, not --in-process"),
])
def test_contradictions_are_usage_errors(given, words):
    with pytest.raises(UsageError, match=words):
        running.placement(args(**given))


def test_names_become_workers_without_importing_anything(monkeypatch):
    impls, named = running.select(["numpy", "tests.hostile_imports.exits_0:backprop", "cmd:node 'a b.js'"], WORKERS)
    assert named and all(isinstance(i, WorkerImplementation) for i in impls)
    assert [i.label for i in impls] == ["numpy", "tests.hostile_imports.exits_0:backprop", "cmd:node 'a b.js'"]
    assert impls[0].name == "numpy" and impls[2].argv == ["node", "a b.js"]
    assert "tests.hostile_imports.exits_0" not in sys.modules  # it would have ended this process


@pytest.mark.parametrize(("name", "words"), [
    ("no-such", "no implementation of that name"),
    ("no_such_module_q:f", "cannot import module 'no_such_module_q'"),
])
def test_a_name_that_cannot_be_anything_is_refused_before_any_worker_starts(name, words):
    with pytest.raises(ImplementationError, match=words):
        running.select([name], WORKERS)


def test_without_names_every_registered_implementation_gets_a_worker():
    from harness.core.registry import declared

    impls, named = running.select(None, WORKERS)
    assert not named and [i.name for i in impls] == list(declared())


def test_in_process_names_resolve_here_and_a_program_still_gets_a_worker():
    impls, named = running.select(["numpy", "cmd:./mlp-worker"], running.Placement(in_process=True))
    assert not isinstance(impls[0], WorkerImplementation) and isinstance(impls[1], WorkerImplementation)


def test_start_keeps_those_that_started_and_says_why_the_others_did_not():
    broken = "tests.hostile_imports.sys_exit_0:backprop"  # exits while imported: the plug-in's ERROR
    impls, _ = running.select(["numpy", broken, "cmd:/no/such/program"], WORKERS)
    started, failures = running.start(impls, WORKERS)
    try:
        assert [i.name for i in started] == ["numpy"]
        assert [(running.display_name(i), v) for i, v, _ in failures] == [
            (broken, Verdict.ERROR), ("cmd:/no/such/program", Verdict.ERROR)]
    finally:
        running.close(impls)


def test_start_raises_a_name_that_does_not_import_as_bad_input():
    impls, _ = running.select(["numpy", "tests.no_such_module:f"], WORKERS)
    with pytest.raises(ImplementationError, match="cannot import module 'tests.no_such_module': ModuleNotFoundError"):
        running.start(impls, WORKERS)
    assert all(not getattr(i, "_worker", None) for i in impls)  # none left running
