"""Make a published asv dashboard work without internet access.

asv's ``index.html`` loads jQuery, flot, bootstrap and three small plugins from
CDNs. This copies the same versions from ``benchmarks/dashboard/node_modules``
(``npm ci --prefix benchmarks/dashboard``) into ``HTML_DIR/vendor/`` and points
``index.html`` at them. Run it after ``asv publish``::

    python benchmarks/offline_dashboard.py .asv/html
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

NODE_MODULES = Path(__file__).resolve().parent / "dashboard" / "node_modules"

# The last part of each CDN URL in asv's index.html -> the file in node_modules.
ASSETS = {
    "jquery-3.3.1.min.js": "jquery/dist/jquery.min.js",
    "jquery.flot.min.js": "flot/jquery.flot.js",
    "jquery.flot.time.min.js": "flot/jquery.flot.time.js",
    "jquery.flot.selection.min.js": "flot/jquery.flot.selection.js",
    "jquery.flot.categories.min.js": "flot/jquery.flot.categories.js",
    "jquery.flot.orderBars.js": "flot-orderbars/js/jquery.flot.orderBars.js",
    "stupidtable.min.js": "stupid-table-plugin/stupidtable.min.js",
    "md5.min.js": "blueimp-md5/js/md5.min.js",
    "bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
}
_CDN_URL = re.compile(r'(?P<attr>src|href)="https://[^"]*/(?P<file>[^"/]+)"')
_SRI = re.compile(r'\s+(integrity|crossorigin|referrerpolicy)="[^"]*"')


def make_offline(html_dir, node_modules=NODE_MODULES) -> list[str]:
    """Vendor the CDN assets into ``html_dir``; returns the files it rewrote to local ones."""
    html_dir, node_modules = Path(html_dir), Path(node_modules)
    index = html_dir / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no asv dashboard there (run `asv publish` first)")
    missing = [str(node_modules / source) for source in ASSETS.values() if not (node_modules / source).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]} is missing: run `npm ci --prefix {node_modules.parent}`")
    vendor = html_dir / "vendor"
    vendor.mkdir(exist_ok=True)
    replaced = []

    def local(match):
        name = match["file"]
        if name not in ASSETS:
            return match[0]
        shutil.copyfile(node_modules / ASSETS[name], vendor / name)
        replaced.append(name)
        return f'{match["attr"]}="vendor/{name}"'

    lines = []
    for line in index.read_text().splitlines(keepends=True):
        rewritten = _CDN_URL.sub(local, line)
        if rewritten != line:  # integrity hashes are for the CDN's bytes, not npm's
            rewritten = _SRI.sub("", rewritten)
        lines.append(rewritten)
    index.write_text("".join(lines))
    return replaced


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} HTML_DIR  (e.g. .asv/html)")
    try:
        names = make_offline(sys.argv[1])
    except FileNotFoundError as exc:
        sys.exit(f"offline_dashboard: {exc}")
    print(f"{len(names)} assets vendored into {sys.argv[1]}/vendor")
