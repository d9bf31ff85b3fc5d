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
        "One named here but unavailable FAILS; one only discovered is skipped.",
    )
    group.addoption(
        "--mapping",
        action="append",
        default=[],
        metavar="module:attr",
        help="a harness.Mapping (or a function of no arguments returning one) to run the mapping checks on "
        "(repeatable); with --mapping and no --impl, only the mappings are tested",
    )


def conformance_subjects(names):
    """The implementations to test: those named (explicit), or every registered one
    (discovered), sorted so every pytest-xdist worker collects the same list."""
    import warnings

    from harness.conformance.property_tests import Subject, subject
    from harness.core.registry import implementations, load_failures

    if names:
        return [subject(name, explicit=True) for name in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load failures are reported as tests below
        found = [subject(impl, explicit=False) for _, impl in sorted(implementations().items())]
        broken = [
            # An installed plug-in that cannot load is a broken install, not an
            # unavailable dependency: its tests fail.
            Subject(name, None, f"entry point {name!r} failed to load: {reason}", explicit=True)
            for name, reason in sorted(load_failures().items())
        ]
    return found + broken


def pytest_generate_tests(metafunc):
    if "conformance_mapping" in metafunc.fixturenames:
        from harness.conformance.mapping_tests import mapping_subject

        subjects = [mapping_subject(ref) for ref in metafunc.config.getoption("mapping")]
        metafunc.parametrize("conformance_mapping", subjects, ids=[s.name for s in subjects])
        return
    if "conformance_impl" not in metafunc.fixturenames:
        return
    if metafunc.config.getoption("mapping") and not metafunc.config.getoption("impl"):
        metafunc.parametrize("conformance_impl", [])  # only the mappings asked for
        return
    subjects = conformance_subjects(metafunc.config.getoption("impl"))
    params = [
        pytest.param(s, id=s.name, marks=[pytest.mark.xdist_group(s.name)]
                     + ([pytest.mark.skip(reason=s.problem)] if s.problem and not s.explicit else []))
        for s in subjects
    ]
    metafunc.parametrize("conformance_impl", params)


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist --dist loadgroup keeps a group on one worker")
