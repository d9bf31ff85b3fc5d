"""The gradebook's rows, CSV, HTML and output folder, from plain task results."""

import csv
import io
import json

import pytest

from harness.commands import gradebook
from harness.commands.errors import UsageError
from harness.commands.submissions import Submission
from harness.core.results import CheckResult, Verdict


def _result(*records):
    return {"impl": "x", "stderr": "", "runs": [{"case": "c", "note": "", "results": [r.to_dict() for r in records]}]}


def test_a_row_keeps_the_first_failure_and_the_worst_verdict_per_check(tmp_path):
    records = (CheckResult("a", "x", "c1", Verdict.PASS), CheckResult("b", "x", "c1", Verdict.FAIL, "wrong", hint="h",
                                                                       repro="backprop-harness check --impl s:backprop"),
               CheckResult("b", "x", "c2", Verdict.PASS), CheckResult("c", "x", "c1", Verdict.CRASHED, "died"))
    row = gradebook.row(Submission("s", "module"), _result(*records), str(tmp_path))
    assert row["verdict"] == "CRASHED" and not row["ok"] and (row["passed"], row["judged"]) == (2, 4)
    assert row["checks"] == {"a": "PASS", "b": "FAIL", "c": "CRASHED"}
    assert row["first_failure"]["check"] == "b" and row["first_failure"]["hint"] == "h"
    assert row["first_failure"]["repro"] == f"cd {tmp_path} && backprop-harness check --impl s:backprop"


def test_nothing_judged_is_not_a_pass():
    assert gradebook.verdict_of([Verdict.SKIP, Verdict.SKIP]) is Verdict.SKIP
    assert gradebook.verdict_of([Verdict.PASS, Verdict.INFRA_ERROR, Verdict.CRASHED]) is Verdict.INFRA_ERROR


def test_csv_cells_a_spreadsheet_would_run_are_quoted(tmp_path):
    row = gradebook.row(Submission("=HYPERLINK(1)", "module"),
                        _result(CheckResult("a", "x", "c", Verdict.FAIL, "+1 wrong")), str(tmp_path))
    parsed = list(csv.DictReader(io.StringIO(gradebook.to_csv([row]))))
    assert parsed[0]["submission"] == "'=HYPERLINK(1)" and parsed[0]["message"] == "'+1 wrong"


def test_html_escapes_what_submissions_say(tmp_path):
    row = gradebook.row(Submission("<b>x</b>", "module"),
                        _result(CheckResult("a", "x", "c", Verdict.ERROR, "<script>alert(1)</script>")), str(tmp_path))
    page = gradebook.to_html([row])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;x" in page


def test_the_out_folder_is_made_and_only_our_own_gradebook_replaced(tmp_path):
    out = gradebook.check_out_folder(str(tmp_path / "book"))
    paths = gradebook.write(out, [], source=str(tmp_path), ok=True)
    assert json.loads(open(paths[0]).read())["generator"].startswith("backprop-harness")
    assert gradebook.check_out_folder(out) == out  # ours: replaced next time
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "gradebook.html").write_text("mine")
    with pytest.raises(UsageError, match="gradebook.html exists and was not written by backprop-harness"):
        gradebook.check_out_folder(str(tmp_path / "other"))
    (tmp_path / "plain").write_text("")
    with pytest.raises(UsageError, match="is not a folder"):
        gradebook.check_out_folder(str(tmp_path / "plain"))


def test_a_module_imported_under_another_name_reproduces_from_a_copy(tmp_path):
    from harness.commands.submissions import discover

    (tmp_path / "numpy.py").write_text("")
    (submission,) = discover(str(tmp_path), "backprop")
    row = gradebook.row(submission, _result(CheckResult("a", "x", "c", Verdict.FAIL, "wrong",
                                                        repro="backprop-harness check --impl submission:backprop")),
                        str(tmp_path))
    assert row["first_failure"]["repro"] == (f'cd "$(mktemp -d)" && cp {tmp_path}/numpy.py submission.py && '
                                             "backprop-harness check --impl submission:backprop")
