"""The asv dashboard, seen in a real browser.

A quick asv run of the numpy, torch and C worker (``workers.json``) step benchmarks
(in this interpreter), then
``asv publish``, the HTML served on 127.0.0.1 only, and headless Chromium rendering
the graph pages: the test passes when the graphs are drawn, and leaves a screenshot
in ``artifacts/dashboard-<implementation>.png``. Without asv, asv_runner, torch or
Chromium it skips with the reason, unless BACKPROP_REQUIRE_DASHBOARD is set (the
tox ``bench`` env sets it, so CI cannot skip it silently).
"""

import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
MACHINE = "dashboard-test"
BENCHMARK = "step.TimeStep.time_step"
# One combination per implementation: enough for a graph, quick enough for CI.
SELECTION = r"TimeStep\.time_step\('(numpy|torch|c-mlp)', 'small', 64, 'float32'\)"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=20000",
]


def _missing() -> str | None:
    for module in ("asv", "asv_runner", "torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench,torch]')"
    if _chromium() is None:
        return "no chromium on PATH (Debian: apt-get install chromium)"
    if shutil.which("cc") is None:
        return "no C compiler on PATH for the C worker (Debian: apt-get install gcc)"
    if not (ROOT / "benchmarks" / "dashboard" / "node_modules").is_dir():
        return "the dashboard's JavaScript is not installed (npm ci --prefix benchmarks/dashboard)"
    if not (ROOT / ".git").exists():
        return f"{ROOT} is not a git checkout (asv benchmarks commits)"
    return None


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    reason = _missing()
    if reason:
        if os.environ.get("BACKPROP_REQUIRE_DASHBOARD"):
            pytest.fail(f"BACKPROP_REQUIRE_DASHBOARD is set but: {reason}")
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("asv")
    config = work / "asv.conf.json"
    config.write_text(json.dumps({
        "version": 1,
        "project": "backprop-harness",
        "repo": str(ROOT),
        "branches": ["HEAD"],  # whatever is checked out, branch or detached
        "benchmark_dir": str(ROOT / "benchmarks"),
        "environment_type": "existing",
        "results_dir": str(work / "results"),
        "html_dir": str(work / "html"),
        "env_dir": str(work / "env"),
    }))
    env = {**os.environ, "HOME": str(work)}  # asv's machine file goes in a throwaway home

    def asv(*args, timeout=600):
        done = subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(config)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"asv {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    subprocess.run([sys.executable, "-m", "asv", "machine", "--yes", "--machine", MACHINE], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=120)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    out = asv("run", "--quick", "--show-stderr", "-E", f"existing:{sys.executable}", "--machine", MACHINE,
              "--set-commit-hash", head, "-b", SELECTION)
    assert "failed" not in out.lower(), out
    asv("publish")
    html = work / "html"
    # No CDN is reachable here: serve asv's JavaScript from local copies.
    offline = _load_script(ROOT / "benchmarks" / "offline_dashboard.py")
    assert len(offline.make_offline(html)) == len(offline.ASSETS)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", html
    finally:
        server.shutdown()
        server.server_close()


def _load_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium_run(*args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


def _graph_url(base, implementation):
    params = {"machine": MACHINE, "p-implementation": f"'{implementation}'", "p-model": "'small'",
              "p-batch": "64", "p-dtype": "'float32'"}
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    return f"{base}#{BENCHMARK}?{query}"


def test_published_results_hold_the_step_benchmark(dashboard):
    _, html = dashboard
    index = json.loads((html / "index.json").read_text())
    assert BENCHMARK in index["benchmarks"]
    graphs = [g for g in (html / "graphs").rglob(f"{BENCHMARK}.json") if "summary" not in g.parts]
    assert graphs, f"asv publish wrote no graph data for {BENCHMARK}"
    # Each graph file holds [revision, [value per parameter combination]] points.
    values = [v for g in graphs for _, per_param in json.loads(g.read_text()) for v in (per_param or [])]
    assert sum(v is not None for v in values) >= 3, f"expected numpy, torch and C worker timings, got {values}"


@pytest.mark.parametrize("implementation", ["numpy", "torch", "c-mlp"])  # c-mlp: a worker program in C
def test_step_graph_renders_in_chromium(dashboard, implementation):
    base, _ = dashboard
    url = _graph_url(base, implementation)
    dom = _chromium_run("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    # flot draws the graph onto canvases inside the plot placeholder once the data loaded.
    assert 'class="flot-base"' in page, f"no rendered graph canvas at {url}:\n{page[-3000:]}"
    assert BENCHMARK in page
    # The legend flot drew names the plotted line: this implementation's timings.
    assert f"implementation-{implementation}; model-small" in page, f"no {implementation} line in the graph at {url}"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"dashboard-{implementation}.png"
    shot.unlink(missing_ok=True)
    taken = _chromium_run(f"--screenshot={shot}", url)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- offline_dashboard.py: no browser needed ------------------------------------------


def _fake_assets(tmp_path, offline):
    node_modules = tmp_path / "node_modules"
    for source in offline.ASSETS.values():
        (node_modules / source).parent.mkdir(parents=True, exist_ok=True)
        (node_modules / source).write_text(f"/* {source} */")
    return node_modules


def test_offline_dashboard_points_index_at_local_copies(tmp_path):
    offline = _load_script(ROOT / "benchmarks" / "offline_dashboard.py")
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
    offline = _load_script(ROOT / "benchmarks" / "offline_dashboard.py")
    with pytest.raises(FileNotFoundError, match="run `asv publish` first"):
        offline.make_offline(tmp_path)
    (tmp_path / "index.html").write_text("")
    with pytest.raises(FileNotFoundError, match="npm ci --prefix"):
        offline.make_offline(tmp_path, tmp_path / "no_node_modules")
