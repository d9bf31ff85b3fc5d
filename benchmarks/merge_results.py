"""Merge asv results from several machines into one results folder, for one dashboard.

Each machine runs the suite itself (one harness process per machine, timing on that
machine only) and keeps its results in ``<results>/<machine>/``. Give this script
those folders (CI artifacts, say) and it copies every machine's results into one
folder; ``asv publish`` then draws each machine as its own line::

    python benchmarks/merge_results.py --into .asv/results lab-a-results/ lab-b-results/
    asv publish

A machine name used by two different machines (their ``machine.json`` differ), or one
result file that two sources hold with different contents, is refused: nothing is
copied then, and the one-line error names the machine or file. The suite description
(``benchmarks.json``) is taken from the last source that has one.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path


class MergeError(Exception):
    """Results that cannot be merged; the message names what and where."""


def machines(source: Path) -> dict[str, Path]:
    """``{machine name: folder}`` of one results folder (each with a ``machine.json``)."""
    if not source.is_dir():
        raise MergeError(f"{source}: not a folder of asv results")
    found = {d.name: d for d in sorted(source.iterdir()) if (d / "machine.json").is_file()}
    if not found:
        raise MergeError(f"{source}: no <machine>/machine.json inside; expected the results_dir of an asv run")
    return found


def _machine_info(folder: Path) -> dict:
    try:
        return json.loads((folder / "machine.json").read_text())
    except (OSError, ValueError) as exc:
        raise MergeError(f"{folder / 'machine.json'}: unreadable ({exc})") from None


def plan(sources, into: Path) -> list[tuple[Path, Path]]:
    """The ``(from, to)`` file copies that merge ``sources`` into ``into``; raises
    ``MergeError`` before anything is copied if the sources conflict."""
    copies, owner = [], {}
    for name, folder in machines(into).items() if into.is_dir() and any(into.glob("*/machine.json")) else ():
        owner[name] = (folder, _machine_info(folder))
    planned: dict[Path, Path] = {}
    for source in sources:
        for name, folder in machines(source).items():
            info = _machine_info(folder)
            if name in owner and owner[name][1] != info:
                raise MergeError(
                    f"machine name {name!r} belongs to two different machines ({owner[name][0]} and {folder}); "
                    "give each machine its own `asv machine --machine NAME`"
                )
            owner.setdefault(name, (folder, info))
            for result in sorted(folder.glob("*.json")):
                target = into / name / result.name
                earlier = planned.get(target) or (target if target.exists() else None)
                if earlier is not None and not filecmp.cmp(earlier, result, shallow=False):
                    raise MergeError(f"{name}/{result.name}: {earlier} and {result} differ; one commit's results, two versions")
                if earlier is None:
                    planned[target] = result
                    copies.append((result, target))
    suites = [s / "benchmarks.json" for s in sources if (s / "benchmarks.json").is_file()]
    if suites:
        copies.append((suites[-1], into / "benchmarks.json"))
    return copies


def merge(sources, into) -> int:
    """Copy the results of ``sources`` into ``into``; returns how many files were copied."""
    into = Path(into)
    copies = plan([Path(s) for s in sources], into)
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return len(copies)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--into", required=True, metavar="RESULTS", help="the results folder asv publish reads")
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="results folders, one or more machines each")
    args = parser.parse_args(argv)
    try:
        copied = merge(args.sources, args.into)
    except MergeError as exc:
        print(f"merge_results: error: {exc}", file=sys.stderr)
        return 2
    names = sorted({name for s in args.sources for name in machines(Path(s))})
    print(f"{copied} files from {len(names)} machine(s) ({', '.join(names)}) merged into {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
