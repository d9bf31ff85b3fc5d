"""The worked example under examples/: installed (tox installs it in every env), its
entry points appear in the registry, pass ``check`` and the conformance suite, and
its broken variant fails with a clear report."""

import importlib.metadata
import pathlib

import pytest

from harness.commands.main import main
from harness.core.registry import implementations

try:
    importlib.metadata.distribution("backprop-harness-example")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("backprop-harness-example is not installed: pip install --no-deps examples/backprop-harness-example",
                allow_module_level=True)

pytest_plugins = ["pytester"]
EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "backprop-harness-example"
SMALL = ["--sizes", "6,5,3", "--batch", "4"]


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich folds names in narrow tables


def _text(capsys):
    return " ".join(capsys.readouterr().out.split())


def test_both_entry_points_are_registered_under_their_names():
    registry = implementations()
    assert {"example-numpy", "example-function"} <= set(registry)
    assert registry["example-numpy"].capabilities.dtypes == {"float32", "float64"}
    assert registry["example-function"].capabilities.dtypes == {"float64"}  # the function shortcut's default


def test_list_shows_them(capsys):
    assert main(["list"]) == 0
    out = _text(capsys)
    assert "example-numpy" in out and "example-function" in out


@pytest.mark.parametrize("name", ["example-numpy", "example-function"])
def test_they_pass_check(name, capsys):
    assert main(["check", "--impl", name, *SMALL, "--activations", "tanh,identity"]) == 0, _text(capsys)


def test_the_broken_variant_fails_with_a_clear_report(capsys):
    assert main(["check", "--impl", "backprop_harness_example.broken:backprop", *SMALL]) == 1
    out = _text(capsys)
    assert "gradients_match_reference FAIL" in out
    assert "layer 0 b" in out and "layer 1 b" in out  # only the biases are wrong
    assert "hint:" in out
    assert "reproduce: backprop-harness check --impl backprop_harness_example.broken:backprop --sizes 6,5,3" in out


# A selection of checks, in the derandomised ci profile. The whole suite on the
# example is `pytest --pyargs harness.conformance --impl example-numpy` (tox runs it).
CHECKS = "loss_matches_reference or gradient_shapes or deterministic or batch_duplication_invariant"


def test_they_pass_the_conformance_suite(pytester, monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    result = pytester.runpytest_subprocess(
        "--pyargs", "harness.conformance", "-p", "no:cacheprovider", "--impl", "example-numpy", "--impl", "example-function",
        "-k", CHECKS,
    )
    result.assert_outcomes(passed=8)


def test_its_own_tests_run_the_suite_with_parametrize_with_checks(pytester, monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    result = pytester.runpytest_subprocess(str(EXAMPLE / "tests"), "-p", "no:cacheprovider", "-k", CHECKS)
    result.assert_outcomes(passed=8)
