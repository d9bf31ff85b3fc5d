import pytest


@pytest.fixture(autouse=True)
def _case_files_in_a_temporary_directory(tmp_path, monkeypatch):
    """Failing mapping checks write case files; keep them out of the working tree."""
    monkeypatch.setenv("BACKPROP_HARNESS_CASE_DIR", str(tmp_path / "cases"))
