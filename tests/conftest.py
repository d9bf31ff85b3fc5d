import pytest

try:
    # importlib_metadata (the backport, which Dask imports) deletes the stdlib path
    # finder's find_distributions and puts its own finder on sys.meta_path instead.
    # Imported during a test that uses pytester, its finder is then taken off again with
    # the rest of sys.meta_path, and from then on this process finds no distribution,
    # so no entry point (test_grid's importorskip("distributed") left every later
    # registry load empty). Imported here, before any test, its finder stays.
    import importlib_metadata  # noqa: F401
except ImportError:  # not installed: nothing deletes the stdlib's finder
    pass


@pytest.fixture(autouse=True)
def _case_files_in_a_temporary_directory(tmp_path, monkeypatch):
    """Failing mapping checks write case files; keep them out of the working tree."""
    monkeypatch.setenv("BACKPROP_HARNESS_CASE_DIR", str(tmp_path / "cases"))
