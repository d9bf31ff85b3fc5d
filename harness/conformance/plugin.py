"""The pytest plugin (entry point ``pytest11``): the ``--impl`` and ``--mapping``
options and the ``conformance_impl`` and ``conformance_mapping`` parameters of the
conformance suite.

Loading it imports neither torch nor the harness: everything is imported in the
hooks, and only when a collected test asks for ``conformance_impl``.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("backprop-harness", "backprop-harness conformance suite")
    group.addoption(
        "--impl",
        action="append",
        default=[],
        metavar="NAME|module:attr",
        help="implementation to run the conformance suite on (repeatable); default: every registered one. "
        "One named here but unavailable FAILS; one only discovered is skipped. cmd:PROGRAM runs a worker program.",
    )
    group.addoption(
        "--in-process",
        action="store_true",
        default=False,
        help="run the implementations inside this pytest process instead of a worker process each "
        "(debugging; one that crashes, exits or hangs then takes the run with it)",
    )
    group.addoption(
        "--worker-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time limit for each call into a worker: loading, prepare, each step (default 300)",
    )
    group.addoption(
        "--conformance-jobs",
        type=int,
        default=None,
        metavar="N",
        help="run the implementation x check properties as executor tasks in N local pool processes when collection "
        "ends (one task per implementation; each test then reports its property's outcome); default: the number of "
        "cores, unless --in-process or pytest-xdist's -n is given; 0: each test runs its property itself, in this "
        "process (as with -n, which spreads those)",
    )
    group.addoption(
        "--conformance-scheduler",
        default=None,
        metavar="tcp://HOST:PORT|local",
        help="like --conformance-jobs, on Dask: a scheduler's address, or 'local' for a cluster of "
        "--conformance-jobs workers on this machine (pip install 'backprop-harness[dask]')",
    )
    group.addoption(
        "--mapping",
        action="append",
        default=[],
        metavar="module:attr",
        help="a harness.Mapping (or a function of no arguments returning one) to run the mapping checks on "
        "(repeatable); with --mapping and no --impl, only the mappings are tested",
    )
    group.addoption(
        "--op",
        action="append",
        default=[],
        metavar="NAME",
        help="an operator of the database (backprop-harness ops): the mapping checks on it for every provider "
        "that offers it and can run here, plug-ins included (repeatable); like --mapping, it leaves out --impl's",
    )


def operator_targets(names) -> list[str]:
    """``harness.ops:OP@PROVIDER`` for every provider of each operator that can run here."""
    from harness import ops

    return [f"harness.ops:{name}@{provider}" for name in names for provider in ops.providers_of(name)
            if not ops.provider(provider).available()]


def conformance_subjects(names, *, in_process: bool = False, timeout: float | None = None):
    """The implementations to test: those named (explicit), or every registered one
    (discovered), sorted so every pytest-xdist worker collects the same list. Each
    runs in a worker process unless ``in_process``."""
    import warnings

    from harness.conformance.property_tests import Subject, subject
    from harness.core.registry import declared, implementations, load_failures, registered_here

    if not in_process:
        if names:
            return [subject(name, explicit=True, timeout=timeout) for name in names]
        entry_points = declared()
        # what a conftest or script gave to register() exists only here: tested in process, not left out
        here = {name: impl for name, impl in registered_here().items() if name not in entry_points}
        return ([subject(name, explicit=False, timeout=timeout, registered=True) for name in sorted(entry_points)]
                + [subject(impl, explicit=False, in_process=True) for _, impl in sorted(here.items())])
    if names:
        return [subject(name, explicit=True, in_process=True) for name in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load failures are reported as tests below
        found = [subject(impl, explicit=False, in_process=True) for _, impl in sorted(implementations().items())]
        broken = [
            # An installed plug-in that cannot load is a broken install, not an
            # unavailable dependency: its tests fail.
            Subject(name, None, f"entry point {name!r} failed to load: {reason}", explicit=True)
            for name, reason in sorted(load_failures().items())
        ]
    return found + broken


def _subjects(config):
    # Once per session: every test function is parametrised by the same subjects,
    # and each worker subject is a process that lives until the session ends.
    if not hasattr(config, "_backprop_harness_subjects"):
        config._backprop_harness_subjects = conformance_subjects(
            config.getoption("impl"), in_process=config.getoption("in_process"),
            timeout=config.getoption("worker_timeout"))
    return config._backprop_harness_subjects


def _asks_for_mappings(config) -> bool:
    return bool(config.getoption("mapping") or config.getoption("op"))


def _mapping_targets(config) -> list[str]:
    """``--mapping`` references, then ``harness.ops:OP@PROVIDER`` for each ``--op``."""
    return config.getoption("mapping") + (operator_targets(config.getoption("op")) if config.getoption("op") else [])


def _only_mappings(config) -> bool:
    return _asks_for_mappings(config) and not config.getoption("impl")


def pytest_generate_tests(metafunc):
    if "conformance_mapping" in metafunc.fixturenames:
        from harness.conformance.mapping_tests import mapping_subject

        config = metafunc.config  # each module:attr loads and runs in a worker unless --in-process
        subjects = [mapping_subject(ref, in_process=config.getoption("in_process"), timeout=config.getoption("worker_timeout"))
                    for ref in _mapping_targets(config)]
        config._backprop_harness_mapping_workers = [s.worker for s in subjects if s.worker is not None]
        if subjects:  # none: deselected below, not an empty parameter set's skip
            metafunc.parametrize("conformance_mapping", subjects, ids=[s.name for s in subjects])
        return
    if "conformance_impl" not in metafunc.fixturenames:
        return
    if _only_mappings(metafunc.config):
        return  # deselected below
    subjects = _subjects(metafunc.config)
    params = [
        pytest.param(s, id=s.name, marks=[pytest.mark.xdist_group(s.name)]
                     + ([pytest.mark.skip(reason=s.problem)] if s.problem and not s.explicit else []))
        for s in subjects
    ]
    metafunc.parametrize("conformance_impl", params)


def pytest_unconfigure(config):
    for s in getattr(config, "_backprop_harness_subjects", ()):
        close = getattr(s.impl, "close", None)
        if close is not None:
            close()
    for worker in getattr(config, "_backprop_harness_mapping_workers", ()):
        worker.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist --dist loadgroup keeps a group on one worker")


def pytest_collection_modifyitems(config, items):
    # The mapping tests with no --mapping, or the implementation tests when only
    # mappings were asked for, test nothing: deselected (and counted as such), never
    # collected as skips that look like tests.
    unwanted = "conformance_impl" if _only_mappings(config) else None if _asks_for_mappings(config) else "conformance_mapping"
    if unwanted is None:
        return
    dropped = [item for item in items if unwanted in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if unwanted not in getattr(item, "fixturenames", ())]


def pytest_collection_finish(session):
    """The collected grid runs through the executor now (``harness.conformance.grid``):
    by default in as many local pool processes as there are cores, or as
    ``--conformance-jobs`` / ``--conformance-scheduler`` say. Not with ``--in-process``
    (the implementations then live in this process), ``--conformance-jobs 0``, or
    pytest-xdist's ``-n`` (which spreads the items itself): each item then runs its
    property here."""
    config = session.config
    jobs, scheduler = config.getoption("conformance_jobs"), config.getoption("conformance_scheduler")
    spread_by_xdist = hasattr(config, "workerinput") or bool(config.getoption("numprocesses", None))
    if jobs == 0 and scheduler is None:
        return
    if jobs is None and scheduler is None and (config.getoption("in_process") or spread_by_xdist):
        return
    if jobs is not None and jobs < 0:
        raise pytest.UsageError(f"--conformance-jobs {jobs}: expected a whole number >= 0 (0: each test runs its "
                                "property in this process)")
    if jobs == 0:
        raise pytest.UsageError("--conformance-jobs 0 and --conformance-scheduler contradict each other")
    if config.getoption("in_process"):
        raise pytest.UsageError("--conformance-jobs/--conformance-scheduler and --in-process contradict each other "
                                "(tasks run the implementations in workers)")
    if spread_by_xdist:
        raise pytest.UsageError("--conformance-jobs/--conformance-scheduler and pytest-xdist's -n each spread the "
                                "grid: give one or the other")
    from harness.checks import check_name
    from harness.conformance.grid import run_grid
    from harness.executors.engine import SchedulerError
    from harness.workers.remote import WorkerImplementation

    grid: dict = {}
    for item in session.items:
        subject = getattr(item, "callspec", None) and item.callspec.params.get("conformance_impl")
        check = getattr(getattr(item, "obj", None), "__name__", "")[len("test_"):]
        if subject is None or subject.problem or not isinstance(subject.impl, WorkerImplementation):
            continue  # nothing to run (it fails or skips by itself), or it lives in this process only
        if check in {check_name(c) for c in _all_checks()}:
            grid.setdefault(id(subject), (subject, []))[1].append(check)
    if not grid:
        return
    from harness.workers.pool import default_jobs

    jobs = jobs or default_jobs()
    try:
        run_grid(list(grid.values()), jobs=jobs, scheduler=scheduler, timeout=config.getoption("worker_timeout"))
    except SchedulerError as exc:
        raise pytest.UsageError(str(exc)) from None
    where = f"on Dask ({scheduler})" if scheduler else f"in {jobs} local pool process{'es' if jobs > 1 else ''}"
    config.stash[_GRID_RAN] = (f"backprop-harness: the conformance grid ran as {len(grid)} executor task"
                               f"{'s' if len(grid) > 1 else ''} {where}, one per implementation "
                               f"({sum(len(checks) for _, checks in grid.values())} implementation x check properties)")


_GRID_RAN = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    line = config.stash.get(_GRID_RAN, None)
    if line:
        terminalreporter.write_line(line)


def _all_checks():
    from harness.checks import ALL_CHECKS

    return ALL_CHECKS
