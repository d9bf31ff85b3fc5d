"""Rendering check results: a rich table for people, JSON for tools."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.core.results import CheckResult, Verdict, printable

STYLE = {
    Verdict.PASS: "green",
    Verdict.FAIL: "bold red",
    Verdict.ERROR: "bold red",
    Verdict.TIMEOUT: "bold red",
    Verdict.CRASHED: "bold red",
    Verdict.SKIP: "yellow",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.INFRA_ERROR: "bold magenta",
}


@dataclass
class Run:
    """The results of one implementation on one case (or why it did not run)."""

    impl: str
    case: str
    results: list[CheckResult] = field(default_factory=list)
    note: str = ""  # why the case was left out

    def __post_init__(self):
        self.impl, self.case, self.note = printable(self.impl), printable(self.case), printable(self.note)

    @property
    def verdict(self) -> Verdict:
        if not self.results:
            return Verdict.SKIP
        for v in (Verdict.INFRA_ERROR, Verdict.CRASHED, Verdict.TIMEOUT, Verdict.ERROR, Verdict.FAIL, Verdict.INCONCLUSIVE):
            if any(r.verdict is v for r in self.results):
                return v
        if all(r.verdict is Verdict.SKIP for r in self.results):
            return Verdict.SKIP
        return Verdict.PASS

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict:
        return {
            "impl": self.impl,
            "case": self.case,
            "verdict": self.verdict.value,
            "note": self.note,
            "results": [r.to_dict() for r in self.results],
        }


def make_console(**kwargs) -> Console:
    """A console that is wide when writing to a file or pipe (logs, CI), where
    rich would otherwise assume 80 columns and fold every cell."""
    console = Console(**kwargs)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=200, **kwargs)
    return console


def summary_table(runs: list[Run]) -> Table:
    table = Table(title="backprop-harness check", show_lines=False)
    for col in ("implementation", "case", "verdict", "checks", "problems", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left", overflow="fold")
    for run in runs:
        ran = [r for r in run.results if r.verdict is not Verdict.SKIP]
        passed = sum(r.verdict is Verdict.PASS for r in ran)
        problems = ", ".join(f"{r.check} {r.verdict.value}" for r in run.results if not r.ok)
        if not problems and run.verdict is Verdict.SKIP:
            problems = run.note or "; ".join(r.message for r in run.results)
        v = run.verdict
        table.add_row(
            escape(run.impl),
            escape(run.case),
            f"[{STYLE[v]}]{v.value}[/]",
            f"{passed}/{len(ran)}" if ran else "-",
            escape(problems),
            f"{sum(r.seconds for r in run.results):.2f}",
        )
    return table


def tensor_table(result: CheckResult) -> Table:
    table = Table(title=escape(f"{result.check}: {result.impl} on {result.case}"))
    for col in ("tensor", "verdict", "max abs err", "max rel err", "non-diff", "unjudged", "worst [index] got / expected (tol)"):
        table.add_column(col)
    for t in result.tensors:
        worst = ""
        if t.worst:
            c = t.worst[0]
            worst = f"[{', '.join(map(str, c.index))}] {c.got:.6g} / {c.expected:.6g} ({c.tolerance:.1g})"
        table.add_row(
            escape(t.name),
            f"[{STYLE[t.verdict]}]{t.verdict.value}[/]",
            f"{t.max_abs_error:.2e}",
            f"{t.max_rel_error:.2e}",
            str(t.n_nondifferentiable),
            str(t.n_unjudged),
            escape(worst),
        )
    return table


def print_report(runs: list[Run], console: Console | None = None, *, detail: bool = False) -> None:
    console = console or make_console()
    console.print(summary_table(runs))
    for run in runs:
        for r in run.results:
            if detail and r.tensors and r.check in ("gradients_match_reference", "vjp_matches_oracle"):
                console.print(tensor_table(r))
            if not r.ok:
                console.print(r.describe(), markup=False, highlight=False)
            elif r.note:
                console.print(f"{r.check} {r.verdict.value} with a note: {r.impl} on {r.case}: {r.note}", markup=False,
                              highlight=False)
    failed = sum(not run.ok for run in runs)
    ran = sum(run.verdict is not Verdict.SKIP for run in runs)
    console.print(f"{ran - failed} of {ran} implementation/case runs passed" + (f", {failed} failed" if failed else ""))


def nothing_judged(runs: list[Run], asked_for) -> str:
    """Why the run judged nothing of some implementation asked for (every one of its
    results a SKIP, or none at all), or ''. Such a run has not passed."""
    missing = []
    for name in asked_for:
        mine = [run for run in runs if run.impl == printable(name)]  # (runs hold it printable)
        if not any(r.verdict is not Verdict.SKIP for run in mine for r in run.results):
            why = sorted({run.note for run in mine if run.note} | {r.message for run in mine for r in run.results if r.message})
            missing.append(f"{printable(name)} ({'; '.join(why) if why else 'no case was selected for it'})")
    if not asked_for:
        return "nothing judged: no implementation is available"
    return f"nothing judged for {', '.join(missing)}" if missing else ""


def write_json(runs: list[Run], path: str, *, ok: bool, reason: str = "") -> None:
    """The whole report as strict JSON (``harness.core.output_files.write_json``):
    ``ok`` is what the exit status says, ``reason`` why nothing was judged, if so."""
    from harness.core.output_files import write_json as write_strict

    write_strict(path, {"ok": ok, "reason": reason or None, "runs": [r.to_dict() for r in runs]})


def conclude(runs: list[Run], asked_for, json_path: str | None) -> bool:
    """Whether the runs passed (and judged something of everything ``asked_for``); the
    JSON report written where asked, and why nothing was judged, if so, on stderr."""
    import sys

    reason = nothing_judged(runs, asked_for)
    ok = not reason and all(r.ok for r in runs)
    if json_path:
        write_json(runs, json_path, ok=ok, reason=reason)
    if reason:
        print(f"backprop-harness: {printable(reason)}", file=sys.stderr)
    return ok
