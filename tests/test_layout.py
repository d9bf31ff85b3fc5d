"""The shape of the tree: layers whose imports only go downwards, no import cycles,
modules of one concern and modest size, and a test file for every module.

Imports are read with ``ast`` (never by importing), at module level and inside
functions alike: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400

# Layer of each place in the tree: an import may only go to the same or a lower layer,
# and within one layer only to the same package (the API, harness/__init__.py, may
# use the other front ends).
LAYERS = {
    "harness.core": 0,  # spec, cases, reference, oracle, tolerances, results, hints, protocol, registry
    "harness.mappings": 1,  # mappings under test from each framework (torch, jax) and NumPy examples
    # the operator database: records, references, samples, providers, and the chain of operators;
    # above mappings (its torch provider is built with the torch adapter), below the checker
    "harness.ops": 1.5,
    # the built-in implementations: each MLP is a chain of the operator database's operators
    # (issue 12), so they sit just above harness.ops and still below everything that runs them
    "harness.impls": 1.75,
    "harness.checks": 2,  # the checker
    "harness.workers": 2,  # worker processes: the wire protocol, process control, remote implementations
    "harness.speed": 2,  # timing
    "harness.training": 2,  # training
    "harness.networks": 2,  # networks as chains of operators, checked end to end and node by node
    # where tasks run (local pool processes or Dask): a task checks in a worker, so above both
    "harness.executors": 3,
    "harness.commands": 4,  # front end: the command line
    "harness.conformance": 4,  # front end: the pytest plugin and conformance suite
    "harness": 4,  # front end: the Python API (harness/__init__.py, __main__.py)
    "benchmarks": 5,  # front end: the asv suite and speed scripts
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    return {module_name(p): p for p in files}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` (module ``name``) imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod where there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import harness.core.spec.x` -> the module it names
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports(path, name, set(modules)) for name, path in modules.items()}


def place(name: str) -> str:
    return max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_only_go_downwards():
    wrong = []
    for source, targets in graph().items():
        for target in targets:
            s, t = place(source), place(target)
            if LAYERS[t] > LAYERS[s] or (LAYERS[t] == LAYERS[s] and t != s and s != "harness"):
                wrong.append(f"{source} ({s}, layer {LAYERS[s]}) imports {target} ({t}, layer {LAYERS[t]})")
    assert wrong == []


def test_the_layer_check_reads_lazy_and_relative_imports(tmp_path, monkeypatch):
    core = tmp_path / "harness" / "core"
    core.mkdir(parents=True)
    (tmp_path / "harness" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "spec.py").write_text("def f():\n    from harness.commands import main\n")
    (core / "cases.py").write_text("from . import spec\n")
    (tmp_path / "harness" / "commands").mkdir()
    (tmp_path / "harness" / "commands" / "__init__.py").write_text("")
    (tmp_path / "harness" / "commands" / "main.py").write_text("")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    edges = graph()
    assert edges["harness.core.spec"] == {"harness.commands.main"}
    assert edges["harness.core.cases"] == {"harness.core.spec"}


def test_every_module_is_placed_in_a_layer():
    unplaced = [name for name in project_modules() if not any(name == p or name.startswith(p + ".") for p in LAYERS)]
    assert unplaced == []


@pytest.mark.parametrize("name, path", sorted(project_modules().items()))
def test_modules_stay_small(name, path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concern (limit {MAX_LINES})"


def expected_test_file(name: str) -> Path | None:
    """``tests/<package>/test_<module>.py`` for ``harness.<package>.<module>``, and
    ``tests/test_api.py`` for the API; ``None`` where no test file is expected."""
    parts = name.split(".")
    if parts[0] != "harness" or parts[-1] in ("__main__",) or parts[-1].startswith("test_"):
        return None
    if len(parts) == 1:
        return ROOT / "tests" / "test_api.py"
    if len(parts) == 2:  # a package's __init__: re-exports only
        return None
    return ROOT / "tests" / Path(*parts[1:-1]) / f"test_{parts[-1]}.py"


def test_every_module_has_its_own_test_file():
    missing = []
    for name in project_modules():
        expected = expected_test_file(name)
        if expected is not None and not expected.exists():
            missing.append(f"{name}: {expected.relative_to(ROOT)}")
    assert missing == []
