"""A real installed distribution for tests: a ``.dist-info`` with ``entry_points.txt``
on ``sys.path`` (which worker processes inherit), and the modules it names."""

from __future__ import annotations

import sys

from harness.core import registry


def install(tmp_path, monkeypatch, entry_points: dict, modules: dict, name: str = "test-plugins",
            group: str = registry.ENTRY_POINT_GROUP) -> None:
    """Entry points ``{name: "module:attr"}`` in ``group`` (``backprop_harness.impls`` by
    default), and ``{module: source}`` beside them; undone by ``monkeypatch``."""
    monkeypatch.syspath_prepend(write_distribution(tmp_path, entry_points, modules, name, group))
    for module in modules:
        monkeypatch.delitem(sys.modules, module, raising=False)


def write_distribution(folder, entry_points: dict, modules: dict, name: str = "test-plugins",
                       group: str = registry.ENTRY_POINT_GROUP) -> str:
    """The files of ``install`` written into ``folder``, and nothing else changed: the
    path to put on ``sys.path`` or PYTHONPATH (of a process the test starts, say)."""
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source)
    dist = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    return str(folder)
