"""Package layout: the import graph of ``medr3_env`` has no cycles.

The graph is built from the source with ``ast``: every ``import`` and ``from ... import`` in a
module, at module level or inside a function, is an edge (imports under ``if TYPE_CHECKING:`` are
type annotations only and are left out). Importing ``a.b.c`` also runs ``a/b/__init__``, so it is
an edge to every package on the way, except the root ``medr3_env`` and the importer's own parent
packages (they are already being imported). Naming the root explicitly (``from medr3_env import
X``) is an edge like any other, and a test forbids it: the root's ``__init__`` imports the
environment and registers the Gymnasium ids.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli before Python 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "medr3_env"


def package_modules() -> dict[str, Path]:
    """Module name -> source file, for the installed layout of ``[tool.setuptools] package-dir``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = config["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in folders.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The package modules that ``name`` imports, each with the line of its first import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        parts = target.split(".")
        for end in range(2, len(parts)):  # the packages on the way, but not the root
            prefix = ".".join(parts[:end])
            if prefix in modules and not name.startswith(f"{prefix}."):  # a parent runs first
                found.setdefault(prefix, line)
        if target in modules:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                add(submodule if submodule in modules else module, node.lineno)
        visit(node)

    visit(tree)
    found.pop(name, None)
    return found


def import_graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    modules = package_modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}, modules


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the graph, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)) is not None:
            return cycle
    return None


def _describe(cycle: list[str], graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> str:
    steps = [
        f"  {a} ({modules[a].relative_to(ROOT)}:{graph[a][b]}) imports {b}"
        for a, b in zip(cycle, cycle[1:], strict=False)
    ]
    return "import cycle:\n" + "\n".join(steps)


def test_the_graph_sees_every_module_and_function_level_imports():
    graph, modules = import_graph()
    assert {"medr3_env.env", "medr3_env.rewards.context", "medr3_env.corpora.jsonl"} <= set(graph)
    assert modules["medr3_env.rewards.context"] == ROOT / "rewards" / "context.py"
    # module level, and a package's __init__ on the way
    assert "medr3_env.rewards.composer" in graph["medr3_env.env"]
    assert "medr3_env.search" in graph["medr3_env.env"]
    # inside a function (replay builds its environment lazily)
    assert "medr3_env.env" in graph["medr3_env.replay"]
    # under TYPE_CHECKING only: not an edge
    assert "medr3_env.config" not in graph["medr3_env.rewards.context"]


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) is None
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]


def test_package_import_graph_has_no_cycles():
    graph, modules = import_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        pytest.fail(_describe(cycle, graph, modules))


def test_no_module_imports_the_package_root():
    graph, modules = import_graph()
    importers = sorted(
        f"{modules[name].relative_to(ROOT)}:{targets[PACKAGE]}"
        for name, targets in graph.items()
        if PACKAGE in targets
    )
    assert importers == [], "import the neutral module instead (e.g. medr3_env.version)"
