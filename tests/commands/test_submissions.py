"""Which entries of a grading folder are submissions, of which kind, and what each
carries; a bad folder or entry name is one line."""

import pytest

from harness.commands import submissions
from harness.commands.errors import UsageError
from harness.commands.submissions import discover


def test_each_kind_of_entry_is_recognised(tmp_path):
    (tmp_path / "alice.py").write_text("def backprop(spec, params, x, y): ...\n")
    (tmp_path / "numpy.py").write_text("")  # would hide numpy from its own worker: imported as 'submission'
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "__init__.py").write_text("")
    (tmp_path / "bob" / "__pycache__").mkdir()
    (tmp_path / "bob" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (tmp_path / "carol").mkdir()
    (tmp_path / "carol" / "worker.cmd").write_text("# comment\n\n  node mlp.js --fast \n")
    (tmp_path / "carol" / "mlp.js").write_text("")
    (tmp_path / "carol" / "run").write_text("#!/bin/sh\n")
    (tmp_path / "carol" / "run").chmod(0o755)
    (tmp_path / "dave").mkdir()
    (tmp_path / "dave" / "worker.cmd").write_text("# nothing\n")
    (tmp_path / "erin.txt").write_text("")
    (tmp_path / ".hidden.py").write_text("")
    (tmp_path / "__pycache__").mkdir()
    found = {s.name: s for s in discover(str(tmp_path), "backprop")}
    assert sorted(found) == ["alice", "bob", "carol", "dave", "erin.txt", "numpy"]
    assert found["alice"].worker.target == "alice:backprop" and set(found["alice"].worker.files) == {"alice.py"}
    assert found["numpy"].worker.target == "submission:backprop" and set(found["numpy"].worker.files) == {"submission.py"}
    assert found["bob"].kind == "package" and set(found["bob"].worker.files) == {"bob/__init__.py"}
    carol = found["carol"]
    assert carol.kind == "command" and carol.worker.target == "node mlp.js --fast" and carol.worker.executables == ("run",)
    assert found["dave"].kind == "invalid" and "no command line" in found["dave"].problem
    assert found["erin.txt"].kind == "invalid" and "not a submission" in found["erin.txt"].problem


def test_a_submission_too_large_is_its_own_row(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_BYTES", 10)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "__init__.py").write_text("x" * 100)
    (big,) = discover(str(tmp_path), "backprop")
    assert big.kind == "invalid" and "exceed" in big.problem


def test_an_entry_that_is_not_a_name_is_refused(tmp_path):
    (tmp_path / "a.py").write_text("")
    with pytest.raises(UsageError, match="--entry 'my-fn'"):
        discover(str(tmp_path), "my-fn")
