"""The asv dashboard, seen in a real browser.

A quick asv run of the numpy, torch and C worker (``workers.json``) step benchmarks
(in this interpreter), then
``asv publish``, the HTML served on 127.0.0.1 only, and headless Chromium rendering
the graph pages: the test passes when the graphs are drawn, and leaves a screenshot
in ``artifacts/dashboard-<implementation>.png``. Without asv, asv_runner, torch or
Chromium it skips with the reason, unless BACKPROP_REQUIRE_DASHBOARD is set (the
tox ``bench`` env sets it, so CI cannot skip it silently).
"""

import json
from urllib.parse import quote

import pytest

from tests.benchmarks.dashboard_support import (
    BENCHMARK,
    ROOT,
    Asv,
    graph_url,
    load_script,
    render,
    require_tools,
    served,
)

MACHINE = "dashboard-test"
# One combination per implementation: enough for a graph, quick enough for CI.
SELECTION = (r"TimeStep\.time_step\('(numpy|torch|c-mlp)', 'small', 64, 'float32'\)"  # c-mlp: workers.json
             # the operator database: one operator's backward per provider, and the checker's cost on one
             r"|TimeOperatorVjp\.time_vjp\('relu', '(numpy|torch|pure-python)', 'float32'\)"
             r"|TimeOperatorCheck\.time_check\('relu', 'numpy'\)")
OPS_BENCHMARKS = ("ops.TimeOperatorVjp.time_vjp", "ops.TimeOperatorCheck.time_check")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    require_tools()
    work = tmp_path_factory.mktemp("asv")
    asv = Asv(work, work / "results")
    asv.run_quick(MACHINE, SELECTION)
    asv("publish")
    with served(work / "html") as base:
        yield base, work / "html"


def test_published_results_hold_the_step_benchmark(dashboard):
    _, html = dashboard
    index = json.loads((html / "index.json").read_text())
    assert BENCHMARK in index["benchmarks"]
    graphs = [g for g in (html / "graphs").rglob(f"{BENCHMARK}.json") if "summary" not in g.parts]
    assert graphs, f"asv publish wrote no graph data for {BENCHMARK}"
    # Each graph file holds [revision, [value per parameter combination]] points.
    values = [v for g in graphs for _, per_param in json.loads(g.read_text()) for v in (per_param or [])]
    assert sum(v is not None for v in values) >= 3, f"expected numpy, torch and C worker timings, got {values}"


def test_published_results_hold_the_operator_benchmarks(dashboard):
    _, html = dashboard
    index = json.loads((html / "index.json").read_text())
    for name in OPS_BENCHMARKS:
        assert name in index["benchmarks"], name
        graphs = [g for g in (html / "graphs").rglob(f"{name}.json") if "summary" not in g.parts]
        values = [v for g in graphs for _, per_param in json.loads(g.read_text()) for v in (per_param or [])]
        expected = 3 if name.endswith("time_vjp") else 1  # relu's VJP from numpy, torch, pure-python
        assert sum(v is not None for v in values) >= expected, f"{name}: {values}"


def test_operator_graph_renders_in_chromium(dashboard):
    base, _ = dashboard
    query = "&".join(f"{k}={quote(v)}" for k, v in [("machine", MACHINE), ("p-operator", "'relu'"),
                                                      ("p-provider", "'numpy'"), ("p-dtype", "'float32'")])
    page = render(f"{base}#{OPS_BENCHMARKS[0]}?{query}", "dashboard-ops-relu.png")
    assert 'class="flot-base"' in page and OPS_BENCHMARKS[0] in page
    assert "operator-relu; provider-numpy; dtype-float32" in page, "no relu line in the operator graph"


@pytest.mark.parametrize("implementation", ["numpy", "torch", "c-mlp"])  # c-mlp: a worker program in C
def test_step_graph_renders_in_chromium(dashboard, implementation):
    base, _ = dashboard
    url = graph_url(base, machines=[MACHINE], implementation=implementation)
    page = render(url, f"dashboard-{implementation}.png")
    # flot draws the graph onto canvases inside the plot placeholder once the data loaded.
    assert 'class="flot-base"' in page, f"no rendered graph canvas at {url}:\n{page[-3000:]}"
    assert BENCHMARK in page
    # The legend flot drew names the plotted line: this implementation's timings.
    assert f"implementation-{implementation}; model-small" in page, f"no {implementation} line in the graph at {url}"


# --- offline_dashboard.py: no browser needed ------------------------------------------


def _fake_assets(tmp_path, offline):
    node_modules = tmp_path / "node_modules"
    for source in offline.ASSETS.values():
        (node_modules / source).parent.mkdir(parents=True, exist_ok=True)
        (node_modules / source).write_text(f"/* {source} */")
    return node_modules


def test_offline_dashboard_points_index_at_local_copies(tmp_path):
    offline = load_script(ROOT / "benchmarks" / "offline_dashboard.py")
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(
        '<script src="https://code.jquery.com/jquery-3.3.1.min.js" integrity="sha256-x" crossorigin="anonymous" '
        'onerror="js_load_failure()"></script>\n'
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css" '
        'integrity="sha256-y" crossorigin="anonymous">\n'
        '<script src="asv.js"></script>\n'
        '<a href="https://github.com/airspeed-velocity/asv/">asv</a>\n')
    replaced = offline.make_offline(html, _fake_assets(tmp_path, offline))
    index = (html / "index.html").read_text()
    assert replaced == ["jquery-3.3.1.min.js", "bootstrap.min.css"]
    assert 'src="vendor/jquery-3.3.1.min.js" onerror="js_load_failure()"' in index
    assert 'href="vendor/bootstrap.min.css"' in index
    assert "integrity" not in index and "crossorigin" not in index  # SRI hashes are the CDN's bytes
    assert 'href="https://github.com/airspeed-velocity/asv/"' in index  # links that are not assets stay
    assert (html / "vendor" / "jquery-3.3.1.min.js").read_text() == "/* jquery/dist/jquery.min.js */"


def test_offline_dashboard_names_what_is_missing(tmp_path):
    offline = load_script(ROOT / "benchmarks" / "offline_dashboard.py")
    with pytest.raises(FileNotFoundError, match="run `asv publish` first"):
        offline.make_offline(tmp_path)
    (tmp_path / "index.html").write_text("")
    with pytest.raises(FileNotFoundError, match="npm ci --prefix"):
        offline.make_offline(tmp_path, tmp_path / "no_node_modules")
