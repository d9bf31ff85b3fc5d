"""What ``train`` shows: the closing table, the JSON record and the loss/accuracy chart."""

from __future__ import annotations

import contextlib
import math

from rich import box
from rich.table import Table

from harness.core.output_files import save_figure
from harness.core.output_files import write_json as write_strict
from harness.core.results import printable, shown
from harness.training.loop import TrainingRun


def summary_table(runs: list[TrainingRun], title: str, skipped: dict[str, str] | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, caption=(
        "loss: mean batch loss of the last epoch; acc: test accuracy after it. s/epoch: median epoch (batch conversions, steps, "
        "gradient copies, SGD update, set_params); total s: all epochs, compilation included; steps/s: "
        "Prepared.step alone. diverg.: largest over epochs of max|p - p_numpy| / max|p_numpy| per tensor; "
        "tol.: its bound after the last epoch. rounding twin: numpy on each batch in reverse order, "
        "the drift rounding alone causes in this run"
    ))
    for col in ("impl", "loss", "acc %", "s/epoch", "total s", "steps/s", "diverg.", "tol.", "verdict"):
        numeric = col not in ("impl", "verdict")
        table.add_column(col, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold",
                         min_width=None if numeric else 7)
    for run in runs:
        table.add_row(
            shown(run.name),
            _number(run.final_loss, ".4f"),
            _number(100 * run.final_accuracy, ".2f"),
            _number(run.seconds_per_epoch, ".3f"),
            _number(run.seconds, ".2f"),
            _number(run.steps_per_second, ".0f"),
            "ref." if run.is_reference else _number(run.max_divergence, ".1e"),
            "" if run.is_reference or not run.tolerance else f"{run.tolerance[-1]:.1e}",
            verdict(run),
        )
    for name, reason in (skipped or {}).items():
        table.add_row(shown(name), "", "", "", "", "", "", "", f"[yellow]left out: {shown(reason)}[/]")
    return table


def _error_verdict(error: str) -> str:
    """CRASHED or TIMEOUT where the error says so (a worker died or hung), INFRA_ERROR
    where the executor lost the task, else ERROR."""
    word = error.split(":", 1)[0]
    return word if word in ("CRASHED", "TIMEOUT", "ERROR", "INFRA_ERROR") else "ERROR"


def verdict(run: TrainingRun) -> str:
    if run.error:
        return f"[red]{_error_verdict(run.error)}[/]"
    if run.diverged:
        return "[red]DIVERGED[/]"
    if run.is_twin:
        return "rounding twin"
    return "[green]ok[/]" + (f" ({shown(run.note)})" if run.note else "")


def problems(runs: list[TrainingRun]) -> list[str]:
    """One line per run that erred or left the reference trajectory."""
    lines = []
    for run in runs:
        if run.error:
            kind = _error_verdict(run.error)
            lines.append(printable(f"{run.name}: {run.error if run.error.startswith(kind) else f'{kind}: {run.error}'}"))
        elif run.diverged:
            epoch = run.first_divergent_epoch
            d, t = run.divergence[epoch], run.tolerance[epoch]
            lines.append(
                f"{printable(run.name)}: DIVERGED from numpy after epoch {epoch + 1}: relative divergence {d:.2e} > tolerance {t:.2e} "
                f"(same start, same batches, same update: its gradients differ from numpy's)"
            )
    return lines


def _number(value, fmt, suffix=""):
    return "-" if value is None or not math.isfinite(value) else f"{value:{fmt}}{suffix}"


def write_json(runs: list[TrainingRun], path, config: dict, *, ok: bool | None = None, reason: str = "") -> None:
    """Every run as strict JSON (NaN and infinities as ``null``: a run that erred has
    no final loss), atomically; ``ok`` is what the exit status says."""
    ok = all(r.ok for r in runs) if ok is None else ok
    write_strict(path, {"ok": ok, "reason": reason or None, "config": config,
                        "implementations": {r.name: r.to_dict() for r in runs}})


def plot_curves(runs: list[TrainingRun], path, title: str) -> None:
    """Loss at every step and test accuracy after every epoch, every implementation
    on the same two axes (agreeing trajectories draw on top of each other)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = ["-", "--", ":", "-."]
    for i, run in enumerate(r for r in runs if r.losses):
        style = styles[i % len(styles)]
        line, = ax_loss.plot(range(1, len(run.losses) + 1), run.losses, style, linewidth=0.6, alpha=0.45)
        steps_per_epoch = len(run.losses) // max(len(run.epoch_losses), 1)
        epoch_ends = [steps_per_epoch * (e + 1) for e in range(len(run.epoch_losses))]
        ax_loss.plot(epoch_ends, run.epoch_losses, style, marker="o", markersize=3, color=line.get_color(),
                     label=f"{run.name} (epoch mean)")
        ax_acc.plot(range(1, len(run.test_accuracy) + 1), [100 * a for a in run.test_accuracy], style, marker="o", markersize=3, label=run.name)
    ax_loss.set(xlabel="step", ylabel="training loss (batch)", title="training loss: every batch, and epoch means")
    if any(r.losses and min(r.losses) > 0 for r in runs):
        ax_loss.set_yscale("log")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy per epoch")
    ax_acc.xaxis.get_major_locator().set_params(integer=True)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def wide_console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # a file or a pipe: room for the whole table
        console = Console(width=max(console.width, 132))
    return console


@contextlib.contextmanager
def training_progress(console, epochs: int, steps_per_epoch: int):
    """A progress bar per run: yields ``(on_start(name), on_step(run, epoch, step, steps))``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                  TimeElapsedColumn(), console=console, redirect_stdout=False, redirect_stderr=False) as progress:
        tasks = {}

        def on_start(name):
            tasks[name] = progress.add_task(name, total=steps_per_epoch, status="")

        def on_step(run, epoch, step, steps):
            task = tasks[run.name]
            if step == 1:
                progress.reset(task, total=steps, description=f"{run.name} epoch {epoch + 1}/{epochs}")
            progress.update(task, completed=step, status=f"loss {run.losses[-1]:.4f}")

        yield on_start, on_step
