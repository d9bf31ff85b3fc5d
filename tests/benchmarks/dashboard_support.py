"""What the dashboard tests share: whether the real tools are here, asv runs in a
throwaway home, the published HTML served on 127.0.0.1 only, and headless Chromium."""

from __future__ import annotations

import contextlib
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
BENCHMARK = "step.TimeStep.time_step"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=20000",
]


def missing() -> str | None:
    """Why the dashboard cannot be built and seen here, or ``None``."""
    for module in ("asv", "asv_runner", "torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench,torch]')"
    if chromium() is None:
        return "no chromium on PATH (Debian: apt-get install chromium)"
    if not (ROOT / "benchmarks" / "dashboard" / "node_modules").is_dir():
        return "the dashboard's JavaScript is not installed (npm ci --prefix benchmarks/dashboard)"
    if not (ROOT / ".git").exists():
        return f"{ROOT} is not a git checkout (asv benchmarks commits)"
    return None


def require_tools() -> None:
    """Skip when a tool is missing, unless BACKPROP_REQUIRE_DASHBOARD says CI must not skip."""
    reason = missing()
    if reason:
        if os.environ.get("BACKPROP_REQUIRE_DASHBOARD"):
            pytest.fail(f"BACKPROP_REQUIRE_DASHBOARD is set but: {reason}")
        pytest.skip(reason)


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def load_script(path):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Asv:
    """asv with its own config (results and html under ``work``) and a throwaway home
    (the machine file), run in this interpreter's environment."""

    def __init__(self, work: Path, results: Path):
        self.work, self.results = work, results
        self.config = work / f"asv-{results.name}.conf.json"
        self.config.write_text(json.dumps({
            "version": 1,
            "project": "backprop-harness",
            "repo": str(ROOT),
            "branches": ["HEAD"],  # whatever is checked out, branch or detached
            "benchmark_dir": str(ROOT / "benchmarks"),
            "environment_type": "existing",
            "results_dir": str(results),
            "html_dir": str(work / "html"),
            "env_dir": str(work / "env"),
        }))
        self.env = {**os.environ, "HOME": str(work)}

    def __call__(self, *args, timeout=600) -> str:
        done = subprocess.run([sys.executable, "-m", "asv", *args, "--config", str(self.config)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"asv {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def run_quick(self, machine: str, selection: str) -> str:
        """One quick run of ``selection`` on this commit, recorded under ``machine``."""
        self("machine", "--yes", "--machine", machine, timeout=120)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        out = self("run", "--quick", "--show-stderr", "-E", f"existing:{sys.executable}", "--machine", machine,
                   "--set-commit-hash", head, "-b", selection)
        assert "failed" not in out.lower(), out
        return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def served(html: Path):
    """``html`` with asv's JavaScript made local (no CDN here), on 127.0.0.1; yields the base URL."""
    offline = load_script(ROOT / "benchmarks" / "offline_dashboard.py")
    assert len(offline.make_offline(html)) == len(offline.ASSETS)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium_run(*args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180)


def graph_url(base, *, machines, implementation, model="small", batch=64, dtype="float32") -> str:
    params = [("machine", m) for m in machines] + [
        ("p-implementation", f"'{implementation}'"), ("p-model", f"'{model}'"), ("p-batch", str(batch)),
        ("p-dtype", f"'{dtype}'")]
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
    return f"{base}#{BENCHMARK}?{query}"


def render(url: str, screenshot_name: str) -> str:
    """The DOM Chromium rendered at ``url``; a screenshot goes to ``artifacts/``."""
    dom = chromium_run("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / screenshot_name
    shot.unlink(missing_ok=True)
    taken = chromium_run(f"--screenshot={shot}", url)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return dom.stdout
