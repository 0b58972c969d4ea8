"""Imports point down: no package of ``appliance/`` imports one that imports it back.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy
import is still a dependency, only a later one. The nodes are the subpackages of
``appliance/`` and its top-level modules; a cycle between any of them fails, naming the
files that close it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "appliance"


def _node(module: str) -> str | None:
    """``appliance.x.y`` -> ``x`` (a subpackage) or ``x`` (a top-level module)."""
    parts = module.split(".")
    if parts[0] != "appliance" or len(parts) < 2:
        return None
    return parts[1]


def import_graph() -> dict[str, dict[str, set[str]]]:
    """node -> imported node -> the files that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        here = rel.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = _node(name)
                if target is not None and target != here and (
                    (PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").is_file()
                ):
                    graph[here][target].add(str(rel))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    problems = []
    for component in cycles(graph):
        edges = [
            f"  {a} -> {b}: {', '.join(sorted(graph[a][b])[:3])}"
            for a in component for b in component if b in graph.get(a, {})
        ]
        problems.append(" <-> ".join(component) + "\n" + "\n".join(edges))
    assert not problems, "import cycles between packages:\n" + "\n".join(problems)


def test_the_request_types_and_the_config_import_nothing_above_them() -> None:
    graph = import_graph()
    assert set(graph.get("core", {})) <= {"errors"}, graph.get("core")
    assert set(graph.get("config", {})) <= {"errors", "shipped"}, graph.get("config")


def test_the_walk_sees_a_cycle(tmp_path: Path) -> None:
    """The check itself can fail: two nodes importing each other form a component."""
    graph: dict[str, dict[str, set[str]]] = {"a": {"b": {"a/x.py"}}, "b": {"a": {"b/y.py"}}}
    assert cycles(graph) == [["a", "b"]]
