"""A mapping trial: fresh copies for every call, the oracle's point, the cotangents,
and for a failure the case file and the command that reruns it."""

import os

import numpy as np

from harness.checks.mapping_trial import MappingTrial, judged_dtype, shapes_ok
from harness.core.mapping import Input, Mapping
from harness.core.mapping_cases import load_mapping_case
from harness.core.results import Verdict
from harness.mappings import examples
from tests.checks.mapping_helpers import trial_for


def test_calls_get_copies_and_the_oracle_runs_in_float64():
    trial = trial_for(examples.embedding, "float32")
    answer = trial.first
    assert answer.inputs[0] is not trial.case.inputs[0] and answer.vjp_inputs[0] is not answer.inputs[0]
    assert answer.grads[1] is None and answer.grads[0].dtype == np.float32
    assert trial.differentiator.inputs[0].dtype == np.float64 and trial.oracle_outputs[0].dtype == np.float64
    assert trial.cotangents[0].dtype == np.float32 and trial.names == ["input 0", "input 1"]
    assert shapes_ok(trial, answer.grads) and judged_dtype(trial, answer.grads) == "float32"
    assert judged_dtype(trial_for(examples.relu, "float64"), [np.ones(2, np.float32)]) == "float32"


def test_input_names_come_from_the_declaration():
    m = Mapping("m", np.add, inputs=[Input((2,), name="x"), Input((2,), name="bias")])
    assert trial_for(m).names == ["x", "bias"]


def test_a_failure_writes_the_case_file_and_names_the_command_that_reruns_it():
    trial = trial_for(examples.relu, "float32", "kinks")
    result = trial.result("vjp_probes", Verdict.FAIL, "wrong")
    path = result.repro.split("--case-file ")[1]
    assert result.repro.startswith("backprop-harness check --mapping harness.mappings.examples:relu --seed 1 --case-file")
    assert os.path.exists(path) and path.startswith(os.environ["BACKPROP_HARNESS_CASE_DIR"])
    back = load_mapping_case(path)
    assert np.array_equal(back.inputs[0], trial.case.inputs[0]) and back.seed == trial.case.seed
    assert trial.result("x", Verdict.PASS).repro == ""  # nothing to reproduce
    assert trial.repro("second_order").endswith("--second-order")
    again = MappingTrial(examples.relu, back)
    assert again.case_file() == (path, "")  # a case read from a file keeps its file
