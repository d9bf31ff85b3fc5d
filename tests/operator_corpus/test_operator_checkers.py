"""The comparison script's wrappers give each peer a fair run: gradcheck and check_grads,
fed a NumPy operator through their own extension points, catch a real bug and pass the
correct operator; a dense Jacobian that cannot fit in the memory cap is reported as no
verdict, not as a pass or a catch."""

import pytest

from benchmarks import operator_checkers as oc
from tests.operator_corpus import softmax as sm
from tests.operator_corpus.entries import BUGS
from tests.operator_corpus.operator import Entry

torch = pytest.importorskip("torch")

BUG = next(e for e in BUGS if e.operator is sm.SoftmaxDiagonalOnly)
CORRECT = Entry(sm.Softmax)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_gradcheck_wrapper_catches_a_real_bug_and_passes_the_correct_operator(fast):
    run = lambda op, xs, p: oc.gradcheck_case(op, xs, p, fast)  # noqa: E731
    caught = oc.over_cases(run, BUG, "float64")
    assert caught.flagged and not caught.raised
    assert oc.over_cases(run, CORRECT, "float64").flagged is False


def test_gradcheck_wrapper_counts_a_refused_gradient_as_flagged_by_raising():
    from tests.operator_corpus import shape_ops

    outcome = oc.over_cases(lambda op, xs, p: oc.gradcheck_case(op, xs, p, False),
                            Entry(shape_ops.ConcatenateSplitAtSizes), "float64")
    assert outcome.flagged and outcome.raised


def test_check_grads_wrapper_catches_a_real_bug_and_passes_the_correct_operator():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        assert oc.over_cases(oc.jax_case, BUG, "float64").flagged
        assert oc.over_cases(oc.jax_case, CORRECT, "float64").flagged is False


def test_a_dense_jacobian_beyond_the_cap_is_no_verdict():
    outcome = oc.run_capped("relu", False, 2 * 2**30)  # 2 GiB: the same death as at 4, sooner
    assert outcome.flagged is None and "memory" in outcome.note


def test_the_table_counts_catches_and_false_alarms(capsys):
    rows = [{t: oc.Outcome(True, 0.5) for t in oc.TOOLS}, {t: oc.Outcome(False, 0.25) for t in oc.TOOLS}]
    oc.print_table([BUG, CORRECT], rows, "two entries")
    out = capsys.readouterr().out
    assert "bugs caught (of 1)" in out and "false alarms (of 1)" in out
    assert out.count("caught 0.50s") == len(oc.TOOLS) and out.count("ok 0.25s") == len(oc.TOOLS)
