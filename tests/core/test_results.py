"""Result records: which verdicts count as ok, JSON-ready dictionaries, and a failure's
text naming what, where, got, expected, tolerance, hint and the command to rerun."""

import json

import pytest

from harness.core.results import CheckResult, Coordinate, TensorReport, Verdict


@pytest.mark.parametrize("verdict", list(Verdict))
def test_only_pass_and_skip_are_ok(verdict):
    assert verdict.ok is (verdict in (Verdict.PASS, Verdict.SKIP))
    assert CheckResult("c", "impl", "case", verdict).ok is verdict.ok


def _failure():
    wrong = TensorReport(
        "layer 0 W", Verdict.FAIL, max_abs_error=0.5, max_rel_error=0.25, n_elements=12, n_failed=2,
        n_nondifferentiable=1, message="see the bracket",
        worst=[Coordinate((1, 2), 2.5, 2.0, 1e-14), Coordinate((0, 0), 0.9, 0.5, 1e-14, bracket=(0.25, 0.75)),
               Coordinate((3, 1), 1.0, 1.0, 1e-14), Coordinate((2, 2), 7.0, 7.0, 1e-14)],
    )
    right = TensorReport("layer 0 b", Verdict.PASS, n_elements=4)
    return CheckResult("gradients_match_reference", "mine", "6-5-3 relu,identity cross_entropy batch=4 float64",
                       Verdict.FAIL, "2 of 53 gradient elements outside tolerance", [wrong, right],
                       hint="only layer 0 W is wrong", seed=3, repro="backprop-harness check --impl mine --seed 3")


def test_describe_names_the_failure_its_worst_elements_the_hint_and_the_repro():
    lines = _failure().describe().splitlines()
    assert lines[0] == ("gradients_match_reference FAIL: mine on 6-5-3 relu,identity cross_entropy batch=4 float64: "
                        "2 of 53 gradient elements outside tolerance")
    assert lines[1] == "  layer 0 W: 2/12 elements outside tolerance, max abs error 0.5, max rel error 0.25; see the bracket"
    assert lines[2] == "    [1, 2]: got 2.5, expected 2 (tolerance 1e-14)"
    assert lines[3] == "    [0, 0]: got 0.9, expected 0.5 (tolerance 1e-14, valid bracket [0.25, 0.75])"
    assert lines[4] == "    [3, 1]: got 1, expected 1 (tolerance 1e-14)"  # three worst elements shown, not four
    assert lines[5:] == ["  hint: only layer 0 W is wrong", "  reproduce: backprop-harness check --impl mine --seed 3"]
    assert "layer 0 b" not in "\n".join(lines)  # passing tensors are not listed


def test_a_pass_describes_in_one_line():
    assert CheckResult("deterministic", "numpy", "case", Verdict.PASS).describe() == "deterministic PASS: numpy on case: "


def test_to_dict_is_plain_json_with_verdicts_as_text():
    d = _failure().to_dict()
    text = json.dumps(d)
    assert json.loads(text)["verdict"] == "FAIL"
    assert d["tensors"][0]["verdict"] == "FAIL" and d["tensors"][1]["verdict"] == "PASS"
    assert d["tensors"][0]["worst"][1]["bracket"] == (0.25, 0.75)
    assert {"check", "impl", "case", "message", "hint", "seed", "repro", "seconds"} <= set(d)


def test_control_characters_an_implementation_gives_are_stored_and_shown_as_escapes():
    from harness.core.results import printable

    spoof = "mine\x1b[2K\r\x1b[1A\x1b[32mPASS\x1b[0m\x07\x9b"
    assert printable(spoof) == "mine\\x1b[2K\\x0d\\x1b[1A\\x1b[32mPASS\\x1b[0m\\x07\\x9b"
    assert printable(printable(spoof)) == printable(spoof) and printable("a\tb\nc é") == "a\tb\nc é"
    assert printable("LIAF\u202e") == "LIAF\\u202e"  # (an override would show the text after it reversed)
    r = CheckResult("vjp_matches_oracle", spoof, spoof, Verdict.FAIL, message=spoof, hint=spoof, note=spoof,
                    tensors=[TensorReport(name=spoof, verdict=Verdict.FAIL, message=spoof)])
    shown = r.describe() + str(r.to_dict())
    assert "\x1b" not in shown and "\r" not in shown and "\x9b" not in shown and "\\x1b[32mPASS" in shown
