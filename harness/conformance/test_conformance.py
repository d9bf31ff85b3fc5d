"""One test per check, each parametrised over implementations (the plugin's
``conformance_impl``): for every drawn case within the implementation's declared
capabilities, the check passes. And one test per mapping check, parametrised over the
mappings named with ``--mapping`` and the operators named with ``--op`` (each provider of
it) (``conformance_mapping``): on every sample case, the
check holds."""

from harness.checks import ALL_CHECKS, check_name
from harness.checks.mapping_runner import MAPPING_CHECKS, mapping_check_name
from harness.conformance.mapping_tests import run_mapping_subject
from harness.conformance.property_tests import run_subject


def _conformance_test(check):
    def test(conformance_impl):
        __tracebackhide__ = True
        run_subject(check, conformance_impl)

    test.__name__ = test.__qualname__ = f"test_{check_name(check)}"
    test.__doc__ = check.__doc__
    return test


for _check in ALL_CHECKS:
    globals()[f"test_{check_name(_check)}"] = _conformance_test(_check)


def _mapping_test(check):
    def test(conformance_mapping):
        __tracebackhide__ = True
        run_mapping_subject(check, conformance_mapping)

    test.__name__ = test.__qualname__ = f"test_mapping_{mapping_check_name(check)}"
    test.__doc__ = check.__doc__
    return test


for _check in MAPPING_CHECKS:
    globals()[f"test_mapping_{mapping_check_name(_check)}"] = _mapping_test(_check)
