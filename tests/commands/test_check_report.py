"""How check results are shown: a run's verdict is its worst result's, the table counts
and names problems, failures are printed in full, and the JSON holds everything."""

import io
import json

import pytest
from rich.console import Console

from harness.commands.check_report import Run, make_console, print_report, summary_table, write_json
from harness.core.results import CheckResult, TensorReport, Verdict


def _result(check, verdict, message="", **kw):
    return CheckResult(check, "mine", "4-3-2 relu,identity cross_entropy batch=2 float64", verdict, message, **kw)


def _text(renderable_or_runs, *, detail=False):
    out = io.StringIO()
    console = Console(file=out, width=250, color_system=None)
    if isinstance(renderable_or_runs, list):
        print_report(renderable_or_runs, console, detail=detail)
    else:
        console.print(renderable_or_runs)
    return out.getvalue()


@pytest.mark.parametrize(
    "verdicts, worst",
    [
        ([Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.TIMEOUT, Verdict.CRASHED], Verdict.CRASHED),
        ([Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.TIMEOUT], Verdict.TIMEOUT),
        ([Verdict.FAIL, Verdict.ERROR, Verdict.SKIP], Verdict.ERROR),
        ([Verdict.SKIP, Verdict.FAIL, Verdict.PASS], Verdict.FAIL),
        ([Verdict.SKIP, Verdict.PASS], Verdict.PASS),
        ([Verdict.SKIP, Verdict.SKIP], Verdict.SKIP),
        ([], Verdict.SKIP),
    ],
)
def test_a_runs_verdict_is_its_worst_result(verdicts, worst):
    run = Run("mine", "case", [_result(f"c{i}", v) for i, v in enumerate(verdicts)])
    assert run.verdict is worst
    assert run.ok is all(v in (Verdict.PASS, Verdict.SKIP) for v in verdicts)


def test_the_summary_counts_checks_that_ran_and_names_the_problems():
    failing = Run("mine", "the case", [_result("deterministic", Verdict.PASS), _result("input_gradient", Verdict.SKIP),
                                       _result("gradient_shapes", Verdict.FAIL, "bad"), _result("gradient_probes", Verdict.ERROR)])
    left_out = Run("slow", "the seed case", note="left out: too many multiply-adds")
    text = " ".join(_text(summary_table([failing, left_out])).split())
    assert "mine │ the case │ ERROR │ 1/3 │ gradient_shapes FAIL, gradient_probes ERROR │" in text
    assert "slow │ the seed case │ SKIP │ - │ left out: too many multiply-adds │" in text


def test_names_with_rich_markup_are_shown_as_written():
    run = Run("impl[bold]", "case [on kinks]", [_result("deterministic", Verdict.PASS)])
    text = _text(summary_table([run]))
    assert "impl[bold]" in text and "case [on kinks]" in text


def test_the_report_prints_each_failure_in_full_and_the_tally():
    tensor = TensorReport("layer 0 W", Verdict.FAIL, n_elements=12, n_failed=1)
    failure = _result("gradients_match_reference", Verdict.FAIL, "1 of 17 outside tolerance", tensors=[tensor],
                      hint="a single element is wrong, in layer 0 W", repro="backprop-harness check --impl mine")
    runs = [Run("mine", "a", [failure]), Run("numpy", "a", [_result("deterministic", Verdict.PASS)]), Run("slow", "b", note="left out")]
    text = _text(runs)
    assert failure.describe() in text  # what, where, hint, reproduce
    assert text.rstrip().endswith("1 of 2 implementation/case runs passed, 1 failed")  # a left-out run is not counted
    assert "non-diff" not in text  # no per-tensor table without detail
    assert "non-diff" in _text(runs, detail=True)


def test_json_holds_every_run_with_its_verdict_and_results(tmp_path):
    runs = [Run("mine", "a", [_result("gradient_shapes", Verdict.FAIL, "bad", seed=3)]), Run("slow", "b", note="left out")]
    path = tmp_path / "report.json"
    write_json(runs, str(path), ok=False)
    data = json.loads(path.read_text())
    assert data["ok"] is False and data["reason"] is None and data["generator"].startswith("backprop-harness")
    assert [(r["impl"], r["verdict"], r["note"]) for r in data["runs"]] == [("mine", "FAIL", ""), ("slow", "SKIP", "left out")]
    assert data["runs"][0]["results"][0]["verdict"] == "FAIL" and data["runs"][0]["results"][0]["seed"] == 3


def test_the_console_is_wide_when_writing_to_a_file(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(file=io.StringIO()).width == 200
    monkeypatch.setenv("COLUMNS", "90")
    assert make_console(file=io.StringIO()).width == 90  # the user's setting wins


def test_inconclusive_is_not_ok_shown_per_tensor_and_a_passing_note_is_printed():
    tensor = TensorReport("layer 0 W", Verdict.INCONCLUSIVE, n_elements=12, n_unjudged=3, message="3 element(s) cannot be judged")
    unsure = _result("gradients_match_reference", Verdict.INCONCLUSIVE, "cannot be judged in float32", tensors=[tensor])
    noted = _result("deterministic", Verdict.PASS, note="two identical calls differ within rounding")
    runs = [Run("mine", "a", [unsure, noted])]
    assert runs[0].verdict is Verdict.INCONCLUSIVE and not runs[0].ok
    text = _text(runs, detail=True)
    assert "unjudged" in text and "INCONCLUSIVE" in text
    assert "deterministic PASS with a note: mine on 4-3-2 relu,identity cross_entropy batch=2 float64: two identical calls" in text
    assert text.rstrip().endswith("0 of 1 implementation/case runs passed, 1 failed")
