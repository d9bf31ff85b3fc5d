"""benchmarks/merge_results.py: results from several machines on one dashboard.

The end-to-end test plays two machines on this one: two quick asv runs recorded under
two machine names into two separate results folders (as two CI runners would upload
them), merged, published once, and seen in headless Chromium with one line per machine.
"""

import json

import pytest

from tests.benchmarks.dashboard_support import ROOT, Asv, graph_url, load_script, render, require_tools, served

merge_results = load_script(ROOT / "benchmarks" / "merge_results.py")
MACHINES = ("lab-a", "lab-b")
SELECTION = r"TimeStep\.time_step\('numpy', 'small', 64, 'float32'\)"


def _results(root, machine, info=None, files=None):
    folder = root / machine
    folder.mkdir(parents=True)
    (folder / "machine.json").write_text(json.dumps(info or {"machine": machine, "version": 1}))
    for name, text in (files or {"abc12345-existing.json": "{}"}).items():
        (folder / name).write_text(text)
    (root / "benchmarks.json").write_text('{"version": 2}')
    return root


def test_every_machine_and_result_lands_in_one_folder(tmp_path):
    a = _results(tmp_path / "a", "lab-a", files={"c1-env.json": "1"})
    b = _results(tmp_path / "b", "lab-b", files={"c1-env.json": "2", "c2-env.json": "3"})
    into = tmp_path / "merged"
    assert merge_results.merge([a, b], into) == 6  # two machine.json, three results, benchmarks.json
    assert (into / "lab-a" / "c1-env.json").read_text() == "1"
    assert (into / "lab-b" / "c2-env.json").read_text() == "3"
    assert (into / "lab-b" / "machine.json").exists() and (into / "benchmarks.json").exists()
    # Merging the same results again copies nothing new (the suite description is refreshed).
    assert merge_results.merge([a, b], into) == 1


def test_one_name_for_two_different_machines_is_refused_and_nothing_is_copied(tmp_path, capsys):
    a = _results(tmp_path / "a", "lab", {"machine": "lab", "cpu": "EPYC"})
    b = _results(tmp_path / "b", "lab", {"machine": "lab", "cpu": "Xeon"})
    into = tmp_path / "merged"
    assert merge_results.main(["--into", str(into), str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "'lab' belongs to two different machines" in err and err.count("\n") == 1
    assert not into.exists()


def test_two_versions_of_one_result_file_are_refused(tmp_path):
    a = _results(tmp_path / "a", "lab", files={"c1-env.json": "1"})
    b = _results(tmp_path / "b", "lab", files={"c1-env.json": "2"})
    with pytest.raises(merge_results.MergeError, match="c1-env.json"):
        merge_results.merge([a, b], tmp_path / "merged")


def test_a_folder_without_results_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert merge_results.main(["--into", str(tmp_path / "m"), str(tmp_path / "empty")]) == 2
    assert "no <machine>/machine.json inside" in capsys.readouterr().err
    assert merge_results.main(["--into", str(tmp_path / "m"), str(tmp_path / "nowhere")]) == 2


def test_two_machines_merged_draw_two_lines_in_chromium(tmp_path):
    require_tools()
    sources = []
    for machine in MACHINES:  # each "machine" runs the suite itself, into its own folder
        Asv(tmp_path, tmp_path / f"results-{machine}").run_quick(machine, SELECTION)
        sources.append(tmp_path / f"results-{machine}")
    merged = tmp_path / "merged"
    assert merge_results.main(["--into", str(merged), *map(str, sources)]) == 0
    publisher = Asv(tmp_path, merged)
    publisher("publish")
    index = json.loads((tmp_path / "html" / "index.json").read_text())
    assert sorted(index["params"]["machine"]) == list(MACHINES)
    with served(tmp_path / "html") as base:
        page = render(graph_url(base, machines=MACHINES, implementation="numpy"), "dashboard-two-machines.png")
    for machine in MACHINES:  # flot's legend names one line per machine
        assert f"implementation-numpy; machine-{machine}; model-small" in page, page[-3000:]
