"""The pytest plugin: ``pytest --pyargs harness.conformance --impl ...`` runs the suite;
explicit-but-unavailable FAILS, discovered-but-unavailable is skipped, a broken
implementation fails with the command that reproduces its minimal case, and pytest-xdist
gives the serial run's results."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.checks import ALL_CHECKS, check_name
from harness.commands.main import main
from harness.core.registry import implementations

pytest_plugins = ["pytester"]

IMPLS = textwrap.dedent('''
    from harness.core import reference
    from harness.core.protocol import Capabilities, Implementation

    def correct(spec, params, x, y):
        return reference.loss_and_grads(spec, params, x, y)

    def bias_summed(spec, params, x, y):
        loss, grads = correct(spec, params, x, y)
        return loss, [(dW, db * len(x)) for dW, db in grads]

    class Unavailable(Implementation):
        name = "never-available"
        def unavailable_reason(self, device=None):
            return "needs hardware this machine lacks"
        def prepare(self, spec, params, *, dtype="float64", device=None):
            raise AssertionError("prepared although unavailable")
''')


@pytest.fixture
def suite(pytester, monkeypatch):
    """Runs the conformance suite in a child pytest, in a folder holding ``myimpls``."""
    pytester.makepyfile(myimpls=IMPLS)
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "dev")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    def run(*args):
        return pytester.runpytest_subprocess("--pyargs", "harness.conformance", "-p", "no:cacheprovider", *args)

    return run


def test_a_correct_implementation_passes(suite):
    result = suite("--impl", "myimpls:correct", "-k", "gradients_match_reference or batch_permutation_invariant")
    result.assert_outcomes(passed=2)


def test_a_broken_implementation_fails_with_the_command_that_reproduces_it(suite, pytester, monkeypatch, capsys):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")  # derandomised: the same minimal case every run
    result = suite("--impl", "myimpls:bias_summed", "-k", "gradients_match_reference")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "gradients_match_reference FAIL: myimpls:bias_summed" in out
    match = re.search(r"reproduce: (backprop-harness check --impl myimpls:bias_summed --case-file (\S+\.npz))", out)
    assert match, out
    # Shrunk to a minimal network (no layer wider than 2) and batch (2: a bias summed
    # over a batch of 1 is right), and the printed command reproduces it.
    assert re.search(r"on (?:[12]-)+[12] \S+ cross_entropy batch=2 ", out), out
    monkeypatch.chdir(pytester.path)
    monkeypatch.syspath_prepend(str(pytester.path))
    assert main(match.group(1).split()[1:]) == 1
    assert "gradients_match_reference FAIL" in " ".join(capsys.readouterr().out.split())


def test_an_implementation_named_explicitly_but_unavailable_fails(suite):
    result = suite("--impl", "myimpls:Unavailable", "--impl", "no-such-impl", "-k", "outputs_are_finite")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "needs hardware this machine lacks" in out and "named explicitly" in out
    assert "'no-such-impl': no implementation of that name" in out


def test_a_discovered_unavailable_implementation_is_skipped_with_its_reason(suite, pytester):
    pytester.makeconftest("from harness import register\nfrom myimpls import Unavailable\nregister(Unavailable())\n")
    result = suite("-k", "outputs_are_finite and never", "-rs")
    result.assert_outcomes(skipped=1)
    assert "needs hardware this machine lacks" in result.stdout.str()


def test_with_no_impl_every_registered_implementation_is_collected(suite):
    result = suite("--collect-only", "-q")
    ids = set(re.findall(r"::test_(\w+)\[([^\]]+)\]", result.stdout.str()))
    names = set(implementations())
    assert {impl for _, impl in ids} == names
    assert len(ids) == len(names) * len(ALL_CHECKS)
    assert {check for check, _ in ids} == {check_name(c) for c in ALL_CHECKS}


def test_pytest_xdist_gives_the_serial_results(suite, monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    # Three checks, one failing for bias_summed: enough to compare, cheap to shrink.
    checks = "gradients_match_reference or batch_permutation_invariant or deterministic"
    args = ("--impl", "myimpls:correct", "--impl", "myimpls:bias_summed", "-k", checks, "-q")

    def outcomes(result):
        return sorted(re.findall(r"(PASSED|FAILED|SKIPPED)\S* \S*::(test_\w+\[[^\]]+\])", result.stdout.str()))

    serial = suite(*args, "-rA")
    parallel = suite(*args, "-rA", "-n", "2")
    assert outcomes(serial) == outcomes(parallel)
    assert any(o == "FAILED" for o, _ in outcomes(serial)) and any(o == "PASSED" for o, _ in outcomes(serial))


def test_loading_the_plugin_does_not_import_torch(pytester):
    pytester.makepyfile(test_light="import sys\n\ndef test_light():\n    assert 'torch' not in sys.modules\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    code = "import sys, harness.conformance.plugin; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_subjects_are_the_named_ones_or_every_registered_one_sorted_in_workers():
    from harness.conformance.plugin import conformance_subjects
    from harness.core.registry import declared

    named = conformance_subjects(["numpy", "no-such-impl"])
    assert [s.name for s in named] == ["numpy", "no-such-impl"] and all(s.explicit for s in named)
    found = conformance_subjects([])
    assert [s.name for s in found] == sorted(declared())  # entry points, none imported here
    assert not any(s.explicit for s in found)
    for s in named + found:
        if s.impl is not None:
            s.impl.close()


def test_in_process_subjects_are_every_registered_one_with_broken_plug_ins_failing(monkeypatch):
    from harness.conformance.plugin import conformance_subjects
    from harness.core import registry

    registry.implementations()
    monkeypatch.setattr(registry, "_LOAD_FAILURES", {"broken-plugin": "ImportError: gone"})
    found = conformance_subjects([], in_process=True)
    assert [s.name for s in found] == sorted(implementations()) + ["broken-plugin"]
    assert not any(s.explicit for s in found[:-1])
    broken = found[-1]
    assert broken.explicit and broken.problem == "entry point 'broken-plugin' failed to load: ImportError: gone"


def test_op_runs_the_mapping_checks_for_every_provider_and_fails_a_plugin_s_wrong_backward(suite, pytester,
                                                                                           monkeypatch):
    from tests.ops import plugins

    plugins.install(pytester.path / "plugin", monkeypatch, "wrong-relu", plugins.WRONG_RELU)
    root = str(Path(__file__).resolve().parents[2])  # this checkout's harness in the child, not an installed one
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ["PYTHONPATH"]]))
    result = suite("--op", "relu", "-k", "vjp_matches_oracle", "-v")
    # the torch provider is there only where torch is installed (not in the core envs)
    providers = ("numpy", "pure-python") + (("torch",) if importlib.util.find_spec("torch") else ())
    result.assert_outcomes(passed=len(providers), failed=1)
    result.stdout.fnmatch_lines(["*test_mapping_vjp_matches_oracle?relu?wrong-relu?? FAILED*"])
    for provider in providers:
        result.stdout.fnmatch_lines([f"*test_mapping_vjp_matches_oracle?relu?{provider}?? PASSED*"])
