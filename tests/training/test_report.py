"""What ``train`` shows: the closing table with a verdict per run, one line per problem,
the JSON record, and the loss/accuracy chart."""

import io
import json
import math

from rich.console import Console

from harness.training.loop import TrainingRun
from harness.training.report import plot_curves, problems, summary_table, verdict, write_json


def _run(name, **kw):
    fields = dict(losses=[2.0, 1.0, 0.5, 0.25], epoch_losses=[1.5, 0.375], test_accuracy=[0.8, 0.9],
                  epoch_seconds=[0.2, 0.1], step_seconds=[0.1, 0.1], steps=4)
    fields.update(kw)
    return TrainingRun(name, "float64", **fields)


REFERENCE = _run("numpy", is_reference=True)
TWIN = _run("numpy (batch reversed)", is_twin=True, divergence=[1e-16, 2e-16], tolerance=[1e-12, 2e-12])
GOOD = _run("torch", divergence=[1e-15, 3e-15], tolerance=[1e-12, 2e-12])
DRIFTING = _run("mine", divergence=[1e-13, 5e-3], tolerance=[1e-12, 2e-12])
BROKEN = _run("raiser", losses=[], epoch_losses=[], test_accuracy=[], epoch_seconds=[], step_seconds=[], steps=0,
              error="RuntimeError: boom")


def test_each_run_gets_its_verdict():
    assert verdict(BROKEN) == "[red]ERROR[/]"
    assert verdict(DRIFTING) == "[red]DIVERGED[/]"
    assert verdict(TWIN) == "rounding twin"
    assert verdict(GOOD) == "[green]ok[/]"
    assert verdict(_run("x", note="judged for 1 of 2 epochs")) == "[green]ok[/] (judged for 1 of 2 epochs)"


def test_problems_are_one_line_each_naming_the_epoch_and_the_numbers():
    lines = problems([REFERENCE, TWIN, GOOD, DRIFTING, BROKEN])
    assert lines == [
        "mine: DIVERGED from numpy after epoch 2: relative divergence 5.00e-03 > tolerance 2.00e-12 "
        "(same start, same batches, same update: its gradients differ from numpy's)",
        "raiser: ERROR: RuntimeError: boom",
    ]


def test_the_table_has_a_row_per_run_and_per_left_out_implementation():
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(
        summary_table([REFERENCE, GOOD, DRIFTING, BROKEN], "training", {"pure-python": "too slow; name it with --impl"}))
    rows = {line.split()[0]: " ".join(line.split()) for line in out.getvalue().splitlines() if line.split()}
    assert rows["numpy"].startswith("numpy 0.3750 90.00 0.150 0.30 20 ref.")
    assert rows["torch"].endswith("3.0e-15 2.0e-12 ok")
    assert rows["mine"].endswith("5.0e-03 2.0e-12 DIVERGED")
    assert rows["raiser"] == "raiser - - - 0.00 - - ERROR"  # nothing measured: dashes, not nan
    assert rows["pure-python"] == "pure-python left out: too slow; name it with --impl"


def test_a_trainee_s_name_and_words_are_shown_as_written_not_as_markup_or_terminal_escapes():
    spoof = "[green]ok[/]\x1b[2K"
    runs = [_run(spoof, divergence=[1e-13, 5e-3], tolerance=[1e-12, 2e-12]), _run("liar", note=spoof),
            _run("raiser", error="RuntimeError: \x1b[1A\x1b[32mok")]
    out = io.StringIO()
    Console(file=out, width=250, color_system=None).print(summary_table(runs, "training", {spoof: spoof}))
    table = out.getvalue()
    assert "\x1b" not in table and table.count("[green]ok[/]\\x1b[2K") == 4  # a name, a note, a left-out name and its reason
    assert "\x1b" not in "".join(problems(runs)) and "RuntimeError: \\x1b[1A\\x1b[32mok" in problems(runs)[1]


def test_the_json_record_holds_the_config_and_every_run(tmp_path):
    path = tmp_path / "train.json"
    write_json([REFERENCE, DRIFTING, BROKEN], path, {"network": "64-500-10", "seed": 0})
    record = json.loads(path.read_text())
    assert record["config"] == {"network": "64-500-10", "seed": 0}
    assert list(record["implementations"]) == ["numpy", "mine", "raiser"]
    assert record["implementations"]["mine"]["diverged"] is True
    assert record["implementations"]["raiser"]["error"] == "RuntimeError: boom"
    assert record["implementations"]["raiser"]["final_loss"] is None and not math.isnan(
        record["implementations"]["numpy"]["final_loss"])


def test_the_chart_is_a_png_and_runs_without_losses_are_left_out(tmp_path):
    path = tmp_path / "curves.png"
    plot_curves([REFERENCE, GOOD, BROKEN], path, title="digits")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_progress_tracks_each_run_by_name():
    from harness.training.loop import TrainingRun
    from harness.training.report import training_progress, wide_console

    console = wide_console()
    with training_progress(console, epochs=2, steps_per_epoch=3) as (on_start, on_step):
        on_start("numpy")
        run = TrainingRun("numpy", "float64", losses=[0.5])
        on_step(run, 0, 1, 3)
        on_step(run, 1, 3, 3)
    assert console.width >= 132 or console.is_terminal
