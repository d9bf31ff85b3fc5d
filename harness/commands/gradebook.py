"""The gradebook ``backprop-harness grade`` writes: one row per submission -- its
verdict per check, how many checks passed, the first failure's message, hint and
reproduce command -- as a rich table, CSV, JSON and a static HTML page.

Every string that comes from a submission (its name, its messages, its worker's
output) is escaped where it goes: rich markup on the terminal, HTML entities on the
page (which loads nothing from anywhere: no CDN, no script), and a cell that a
spreadsheet would read as a formula gets a leading apostrophe in the CSV.
"""

from __future__ import annotations

import csv
import html
import io
import os
import shlex

from harness.core.results import Verdict

FILES = ("gradebook.json", "gradebook.csv", "gradebook.html")
# the verdict of a row: the first of these any of its checks has, else PASS (SKIP: nothing judged)
WORST_FIRST = (Verdict.INFRA_ERROR, Verdict.CRASHED, Verdict.TIMEOUT, Verdict.ERROR, Verdict.FAIL, Verdict.INCONCLUSIVE)
_FORMULA = ("=", "+", "@", "\t", "\r")


def verdict_of(verdicts) -> Verdict:
    verdicts = list(verdicts)
    for v in WORST_FIRST:
        if v in verdicts:
            return v
    return Verdict.PASS if Verdict.PASS in verdicts else Verdict.SKIP


def row(submission, result: dict, folder: str) -> dict:
    """One submission's row from its task's plain result."""
    results = [r for run in result["runs"] for r in run["results"]]
    by_check: dict[str, list] = {}
    for r in results:
        by_check.setdefault(r["check"], []).append(Verdict(r["verdict"]))
    first = next((r for r in results if not Verdict(r["verdict"]).ok), None)
    verdict = verdict_of(Verdict(r["verdict"]) for r in results) if results else Verdict.SKIP
    failure = None
    if first is not None:
        failure = {key: first[key] for key in ("check", "case", "verdict", "message", "hint")}
        failure["repro"] = _runnable(first["repro"], submission, folder) if first["repro"] else ""
    return {
        "submission": submission.name,
        "kind": submission.kind,
        "impl": result.get("impl", ""),
        "verdict": verdict.value,
        "ok": verdict is Verdict.PASS,
        "passed": sum(1 for r in results if r["verdict"] == Verdict.PASS.value),
        "judged": sum(1 for r in results if r["verdict"] != Verdict.SKIP.value),
        "checks": {name: verdict_of(vs).value for name, vs in by_check.items()},
        "first_failure": failure,
        "stderr": result.get("stderr", ""),
        "runs": result["runs"],
    }


def _runnable(repro: str, submission, folder: str) -> str:
    """The check's reproduce line, run where the submission's files are (a module
    imported under another name -- ``submission`` -- from a copy in a new folder)."""
    where = os.path.abspath(folder)
    if submission.kind == "command":
        where = os.path.join(where, submission.name)
    module = submission.worker.target.partition(":")[0] if submission.worker else ""
    if submission.kind == "module" and module and module != submission.name:
        source = shlex.quote(os.path.join(where, submission.name + ".py"))
        return f'cd "$(mktemp -d)" && cp {source} {module}.py && {repro}'
    return f"cd {shlex.quote(where)} && {repro}"


def check_names(rows) -> list[str]:
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r["checks"]))
    return list(names)


def document(rows, *, folder: str, ok: bool) -> dict:
    return {"ok": ok, "folder": os.path.abspath(folder), "checks": check_names(rows), "submissions": rows}


# --- CSV -------------------------------------------------------------------------


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) or (text.startswith("-") and len(text) > 1) else text


def to_csv(rows) -> str:
    checks = check_names(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "kind", "verdict", "passed", "judged", *checks,
                     "first_failure_check", "first_failure_case", "message", "hint", "repro"])
    for r in rows:
        f = r["first_failure"] or {}
        writer.writerow([_cell(v) for v in (r["submission"], r["kind"], r["verdict"], r["passed"], r["judged"],
                                            *(r["checks"].get(c, "") for c in checks), f.get("check"), f.get("case"),
                                            f.get("message"), f.get("hint"), f.get("repro"))])
    return out.getvalue()


# --- HTML ------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f0f0f0; }
td.v-PASS { background: #d9f2d9; } td.v-SKIP, td.v-INCONCLUSIVE { background: #fff3c4; }
td.v-FAIL, td.v-ERROR, td.v-CRASHED, td.v-TIMEOUT { background: #f8d0d0; } td.v-INFRA_ERROR { background: #e3d0f8; }
code { white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.detail { min-width: 28em; max-width: 36em; }
"""


def to_html(rows, *, title: str = "backprop-harness gradebook", folder: str = "") -> str:
    e = html.escape
    checks = check_names(rows)
    passed = sum(1 for r in rows if r["ok"])
    head = "".join(f"<th>{e(c)}</th>" for c in ("submission", "verdict", "checks passed", "first failure", *checks))
    body = []
    for r in rows:
        f = r["first_failure"]
        if f:
            detail = (f"<b>{e(f['check'])}</b> {e(f['verdict'])} on {e(f['case'])}: {e(f['message'])}"
                      + (f"<br><i>hint:</i> {e(f['hint'])}" if f["hint"] else "")
                      + (f"<br><code>{e(f['repro'])}</code>" if f["repro"] else ""))
        else:
            detail = ""
        cells = [f"<td>{e(r['submission'])}</td>", f'<td class="verdict v-{e(r["verdict"])}">{e(r["verdict"])}</td>',
                 f"<td>{r['passed']}/{r['judged']}</td>", f'<td class="detail">{detail}</td>']
        cells += [f'<td class="v-{e(r["checks"].get(c, ""))}">{e(r["checks"].get(c, ""))}</td>' for c in checks]
        body.append(f'<tr data-submission="{e(r["submission"])}">' + "".join(cells) + "</tr>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{e(title)}</h1>\n"
            f"<p id=\"summary\">{passed} of {len(rows)} submissions passed every check; folder {e(folder)}</p>\n"
            f"<table id=\"gradebook\"><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body)
            + "\n</tbody></table></body></html>\n")


# --- the terminal ----------------------------------------------------------------


def print_table(rows, console) -> None:
    from rich.table import Table

    from harness.commands.check_report import STYLE
    from harness.core.results import shown

    table = Table(title="gradebook", show_lines=False)
    for column in ("submission", "verdict", "passed", "first failure"):
        table.add_column(column, overflow="fold")
    for r in rows:
        f = r["first_failure"]
        style = STYLE.get(Verdict(r["verdict"]), "")
        first = shown(f"{f['check']} on {f['case']}: {f['message']}"[:300]) if f else ""
        table.add_row(shown(r["submission"]), f"[{style}]{r['verdict']}[/]", f"{r['passed']}/{r['judged']}", first)
    console.print(table)


# --- the files -------------------------------------------------------------------


def check_out_folder(folder: str) -> str:
    """``folder`` made absolute, after checking the gradebook can go there: created if
    missing (its parent must exist); an existing one holds no gradebook file that the
    harness did not write (the gradebook.json's mark vouches for the others)."""
    from harness.commands.errors import UsageError
    from harness.core.output_files import written_by_harness

    absolute = os.path.abspath(os.path.expanduser(folder))
    if os.path.lexists(absolute) and not os.path.isdir(absolute):
        raise UsageError(f"--out {folder}: exists and is not a folder; expected a folder for the gradebook")
    if not os.path.isdir(os.path.dirname(absolute)):
        raise UsageError(f"--out {folder}: no such folder {os.path.dirname(absolute)}")
    present = [name for name in FILES if os.path.lexists(os.path.join(absolute, name))]
    ours = os.path.isfile(os.path.join(absolute, FILES[0])) and written_by_harness(os.path.join(absolute, FILES[0]), "json")
    if present and not ours:
        raise UsageError(f"--out {folder}: {present[0]} exists and was not written by backprop-harness; not replacing it "
                         "(remove it or choose another folder)")
    if os.path.isdir(absolute) and not os.access(absolute, os.W_OK | os.X_OK):
        raise UsageError(f"--out {folder}: the folder is not writable")
    return absolute


def write(folder: str, rows, *, source: str, ok: bool) -> list[str]:
    """Write the gradebook's files into ``folder`` (made if missing); their paths."""
    from harness.core.output_files import write_atomically, write_json

    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, name) for name in FILES]
    write_atomically(paths[1], lambda fh: fh.write(to_csv(rows)))
    write_atomically(paths[2], lambda fh: fh.write(to_html(rows, folder=os.path.abspath(source))))
    write_json(paths[0], document(rows, folder=source, ok=ok))  # last: its mark vouches for the others
    return paths
