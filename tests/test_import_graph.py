"""The core's modules import one another one way: no import circle.

The graph is built from the sources with ``ast`` (nothing imported), over every module
of the core (``core/``, the ``dossiersync`` package without its plugins and entities).
An edge is any ``import``/``from … import`` of a core module, at module level or inside a
function alike: an import moved into a function still runs, only later, so a circle made
of one is still a circle (each end needs the other loaded; which one finishes first
depends on who is imported first).

Imports under ``if TYPE_CHECKING:`` are counted too, but apart: they never run, and a few
of them are the one place where a lower module names a higher one's type. Those edges are
listed below with the reason; any other circle, at run time or in the types, fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"

#: annotation-only imports allowed to close a circle in the types, and why. The plugin
#: registry is the layer the configuration, the secrets and the sync ask of plugins; the
#: hooks it calls and the endpoints it loads are given what those higher layers hold.
ANNOTATION_ONLY = {
    ("dossiersync.registry", "dossiersync.config"): (
        "configure() hands the Config just read to the plugins' dossiersync_configure"
    ),
    ("dossiersync.hookspecs", "dossiersync.config"): (
        "the hooks' signatures name Config for plugin authors and mypy"
    ),
    ("dossiersync.hookspecs", "dossiersync.journal"): (
        "the hooks' signatures name RunRecord and IncidentRecord for plugin authors"
    ),
    ("dossiersync.entity", "dossiersync.context"): (
        "the override points are given the DossierContext of the run"
    ),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["dossiersync", *parts])


def imported(
    module: str, node: ast.Import | ast.ImportFrom, is_package: bool, modules: set[str]
) -> set[str]:
    """The core modules one import statement names: ``from package import name`` names
    the module ``package.name`` when there is one (``from . import api``), else the
    package's ``__init__``."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    if node.level:
        base = module.split(".")[: None if is_package else -1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    named = {f"{source}.{alias.name}" for alias in node.names}
    found = named & modules
    return found | ({source} & modules if len(found) < len(named) else set())


def imports_of(
    module: str, node: ast.AST, is_package: bool, modules: set[str], typing: bool = False
) -> list[tuple[str, bool]]:
    """Each core module ``node`` imports anywhere in it, and whether only for types."""
    found: list[tuple[str, bool]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            names = imported(module, child, is_package, modules) - {module}
            found += [(name, typing) for name in names]
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            body, orelse = ast.Module(child.body, []), ast.Module(child.orelse, [])
            found += imports_of(module, body, is_package, modules, True)
            found += imports_of(module, orelse, is_package, modules, typing)
        else:
            found += imports_of(module, child, is_package, modules, typing)
    return found


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Each core module's imports of core modules: those that run, and those under
    ``TYPE_CHECKING`` (not also imported where it runs)."""
    files = {module_name(p): p for p in sorted(CORE.rglob("*.py"))}
    runs: dict[str, set[str]] = {}
    typing_only: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = imports_of(module, tree, path.name == "__init__.py", set(files))
        runs[module] = {name for name, typing in found if not typing}
        typing_only[module] = {name for name, typing in found if typing} - runs[module]
    return runs, typing_only


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def inside(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]


def test_the_graph_sees_the_core_and_its_imports() -> None:
    runs, typing_only = graph()
    # the modules the checks below are about, and imports of each kind, are in it
    assert {"dossiersync.config", "dossiersync.registry", "dossiersync.sync.base"} <= set(runs)
    assert "dossiersync.registry" in runs["dossiersync.config"]
    assert "dossiersync.entity" in runs["dossiersync.registry"]  # inside a function
    assert "dossiersync.config" in typing_only["dossiersync.registry"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_among_the_core_modules() -> None:
    runs, _ = graph()
    found = circles(runs)
    assert not found, "import circles:\n" + "\n".join(
        "  " + ", ".join(c) + "\n    " + "\n    ".join(inside(c, runs)) for c in found
    )


def test_no_circle_in_the_types_but_the_annotations_listed() -> None:
    runs, typing_only = graph()
    edges = {
        module: runs[module] | {t for t in typed if (module, t) not in ANNOTATION_ONLY}
        for module, typed in typing_only.items()
    }
    found = circles(edges)
    assert not found, "import circles through TYPE_CHECKING imports:\n" + "\n".join(
        "  " + ", ".join(c) + "\n    " + "\n    ".join(inside(c, edges)) for c in found
    )
    # an allowance that no longer closes anything, or names an import that is gone, goes
    for (module, target), _why in ANNOTATION_ONLY.items():
        assert target in typing_only[module], f"{module} no longer imports {target} for types"
