"""The import graph runs one way, down the layers of docs/architecture.md, and has no cycle.

Every import of every module of verify/, models/ and properties/ counts, also those inside a
function (made late to save start-up time): a late import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("verify", "models", "properties")

# Lowest first: a module may import from its own layer's package or from a layer below, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("models",),
    # The version, the process and signal plumbing, reading a user's file: used at every level.
    ("verify", "verify.workers", "verify.files", "verify.interrupts"),
    ("verify.search",),
    ("properties",),
    ("verify.traces",),
    ("verify.check", "verify.source"),
    ("verify.report",),
    ("verify.cli", "verify.config", "verify.pytest_plugin", "verify.__main__", "verify.policies_command"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The project's modules that `path` imports (a package's `from P import m` names module P.m)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
            names = names or [node.module]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def layer(module: str) -> tuple[int, str]:
    """The module's layer and the package that owns it there: the longest prefix named in LAYERS."""
    best: tuple[int, int, str] | None = None
    for rank, owners in enumerate(LAYERS):
        for owner in owners:
            if (module == owner or module.startswith(owner + ".")) and (best is None or len(owner) > best[1]):
                best = (rank, len(owner), owner)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0], best[2]


def graph() -> nx.DiGraph:
    found = modules()
    g = nx.DiGraph()
    g.add_nodes_from(found)
    for name, path in found.items():
        g.add_edges_from((name, target) for target in imports(path, set(found)) if target != name)
    return g


def wrong_way(g: nx.DiGraph) -> list[str]:
    bad = []
    for source, target in sorted(g.edges):
        if layer(target)[0] > layer(source)[0]:
            bad.append(f"{source} imports {target}, a layer above it")
    return bad


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_no_import_cycle() -> None:
    cycles = sorted(" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph()))
    assert cycles == []


def test_imports_run_down_the_layers() -> None:
    assert wrong_way(graph()) == []


def test_the_check_finds_a_cycle_and_an_upward_import() -> None:
    g = graph()
    g.add_edge("verify.search.confirm", "verify.search.solver")
    g.add_edge("verify.search.solver", "verify.search.confirm")
    g.add_edge("models.vec", "properties.base")
    assert any("verify.search.confirm" in c for c in nx.simple_cycles(g))
    assert wrong_way(g) == ["models.vec imports properties.base, a layer above it"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("from verify.search import solver", {"verify.search.solver"}),
        ("from verify.search.solver import Answer", {"verify.search.solver"}),
        ("import models.vec", {"models.vec"}),
        ("def f():\n    from properties.binder import BMC_DEPTH", {"properties.binder"}),
    ],
)
def test_every_kind_of_import_is_seen(tmp_path: Path, line: str, expected: set[str]) -> None:
    source = tmp_path / "m.py"
    source.write_text(line + "\n")
    assert imports(source, set(modules())) == expected
