"""The import graph of ``chatserver/``, read from the source with ``ast`` (nothing imported).

Every ``import`` inside the package that names a module of the package
(``import chatserver.x``, ``from chatserver.x import y``, ``from .x import y``,
``from . import x``) is an edge.  Edges come in three kinds:

* ``module``: at module level, run when the module is imported;
* ``lazy``: inside a function, run when it is called.  A lazy import is still
  a dependency (it is how a circle is usually hidden), so it counts;
* ``typing``: under ``if TYPE_CHECKING:``, never run.  Listed, but not a cycle.

Three rules (issue #16, REDESIGN.md step 0):

1. No import cycle inside ``chatserver/`` (``module`` and ``lazy`` edges).
   The last two (``app -> demo -> cli ⇢ app`` and ``control <-> visitors``)
   were untied in #16: the demo site's names live in ``web/demo.py``, the
   control channel's name in ``conversations.py``.
2. The protocol core (``protocol.py``, ``frames.py`` and every chatserver
   module they import, transitively) imports no I/O: not ``asyncio``,
   ``socket``, ``uvicorn``, ``starlette`` or ``websockets``.
3. The HTTP/WebSocket edge (``web/``) is imported only by itself and by the
   command that serves it (``cli/``): the core never depends on the edge.

Run ``python -m tests.unit.test_imports`` to print the cycles and the typing-only edges.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "chatserver"
PROTOCOL_CORE = (
    "chatserver.protocol.codec",
    "chatserver.protocol.frames",
    "chatserver.protocol.wire",
)
EDGE = "chatserver.web"
EDGE_USERS = ("chatserver.web", "chatserver.cli")
IO_MODULES = frozenset({"asyncio", "socket", "uvicorn", "starlette", "websockets"})

Graph = Mapping[str, Iterable[str]]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: str  # "module", "lazy" or "typing"
    line: int


@dataclass(slots=True)
class Package:
    """The modules of one package and their imports."""

    modules: dict[str, Path]
    edges: list[Edge]  # imports of modules of the package
    external: dict[str, list[tuple[str, str, int]]]  # module -> (top-level name, kind, line)

    def graph(self, kinds: frozenset[str] = frozenset({"module", "lazy"})) -> dict[str, set[str]]:
        graph: dict[str, set[str]] = {name: set() for name in self.modules}
        for edge in self.edges:
            if edge.kind in kinds:
                graph[edge.source].add(edge.target)
        return graph


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterable[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind (see the module docstring)."""
    stack: list[tuple[ast.AST, str]] = [(tree, "module")]
    while stack:
        node, kind = stack.pop()
        for child in ast.iter_child_nodes(node):
            child_kind = kind
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                child_kind = "lazy" if kind == "module" else kind
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    stack.append((ast.Module(body=[sub], type_ignores=[]), "typing"))
                for sub in child.orelse:
                    stack.append((ast.Module(body=[sub], type_ignores=[]), kind))
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, child_kind
            else:
                stack.append((child, child_kind))


def scan(root: Path, package: str = PACKAGE) -> Package:
    """Read every module under ``root / package`` (no module is imported)."""
    modules = {_module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    edges: list[Edge] = []
    external: dict[str, list[tuple[str, str, int]]] = {name: [] for name in modules}

    def resolve(base: str, names: Iterable[str]) -> list[str]:
        # ``from base import name``: the submodule ``base.name`` when there is one.
        found = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
        return found or ([base] if base in modules else [])

    for source, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_init = path.name == "__init__.py"
        for stmt, kind in _imports(tree):
            targets: list[str] = []
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        targets.append(alias.name)
                    else:
                        external[source].append((alias.name.split(".")[0], kind, stmt.lineno))
            else:
                names = [alias.name for alias in stmt.names]
                if stmt.level:
                    parts = source.split(".") if is_init else source.split(".")[:-1]
                    parts = parts[: len(parts) - (stmt.level - 1)]
                    base = ".".join([*parts, *([stmt.module] if stmt.module else [])])
                    targets = resolve(base, names)
                elif stmt.module == package or (stmt.module or "").startswith(package + "."):
                    targets = resolve(stmt.module or "", names)
                else:
                    external[source].append(((stmt.module or "").split(".")[0], kind, stmt.lineno))
            edges.extend(
                Edge(source, t, kind, stmt.lineno) for t in targets if t in modules and t != source
            )
    return Package(modules, edges, external)


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with a cycle (Tarjan's algorithm), each sorted;
    a module importing itself is one too.  Sorted by size, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})

    for start in nodes:
        if start in index:
            continue
        # Iterative DFS: (node, iterator over its successors).
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in set(graph.get(node, ())):
                    found.append(sorted(component))
    return sorted(found, key=lambda c: (-len(c), c))


def shortest_cycle(graph: Graph, start: str) -> list[str]:
    """A shortest import path from ``start`` back to itself ([] when there is none)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, ())):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if succ not in seen:
                seen.add(succ)
                parent[succ] = node
                queue.append(succ)
    return []


def reachable(graph: Graph, roots: Iterable[str]) -> set[str]:
    seen = set(roots)
    queue = deque(seen)
    while queue:
        for succ in graph.get(queue.popleft(), ()):
            if succ not in seen:
                seen.add(succ)
                queue.append(succ)
    return seen


def _within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def importers(pkg: Package, target: str, allowed: Iterable[str]) -> list[str]:
    """The imports (not typing-only) of ``target`` or its submodules from outside ``allowed``."""
    allowed = tuple(allowed)
    return sorted(
        f"{e.source}:{e.line} imports {e.target} ({e.kind})"
        for e in pkg.edges
        if e.kind != "typing" and _within(e.target, [target]) and not _within(e.source, allowed)
    )


def io_imports(pkg: Package, roots: Iterable[str]) -> list[str]:
    """The I/O imports (``IO_MODULES``) run by ``roots`` and what they import of the package."""
    core = reachable(pkg.graph(), roots)
    return sorted(
        f"{module}:{line} imports {name} ({kind})"
        for module in core
        for name, kind, line in pkg.external[module]
        if name in IO_MODULES and kind != "typing"
    )


def report(pkg: Package) -> str:
    """The cycles (each with one shortest circle) and the typing-only edges, as text."""
    graph = pkg.graph()
    lines = []
    for component in cycles(graph):
        members = set(component)
        sub = {m: {t for t in graph[m] if t in members} for m in component}
        example = shortest_cycle(sub, component[0])
        lines.append(f"cycle of {len(component)}: {' '.join(component)}")
        lines.append(f"  e.g. {' -> '.join(example)}")
    typing = sorted({(e.source, e.target) for e in pkg.edges if e.kind == "typing"})
    lines.append(f"{len(typing)} typing-only imports (not cycles):")
    lines.extend(f"  {source} -> {target}" for source, target in typing)
    return "\n".join(lines)


# -- the rules on chatserver/ ---------------------------------------------------------


def test_no_import_cycle_in_chatserver() -> None:
    pkg = scan(ROOT)
    assert len(pkg.modules) > 40  # the package was found and read
    found = cycles(pkg.graph())
    assert not found, "import cycles in chatserver/:\n" + report(pkg)


def test_protocol_core_imports_no_io() -> None:
    pkg = scan(ROOT)
    core = reachable(pkg.graph(), PROTOCOL_CORE)
    assert set(PROTOCOL_CORE) <= core
    assert not io_imports(pkg, PROTOCOL_CORE), "\n".join(io_imports(pkg, PROTOCOL_CORE))


def test_only_the_command_imports_the_web_edge() -> None:
    pkg = scan(ROOT)
    assert f"{EDGE}.app" in pkg.modules and f"{EDGE}.ws" in pkg.modules
    found = importers(pkg, EDGE, EDGE_USERS)
    assert not found, "\n".join(found)


# -- the checker itself, on made-up packages -------------------------------------------


def test_cycle_finder_on_a_small_graph() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e
        "f": {"f"},  # imports itself
        "g": {"a", "h"},  # into a cycle, but on none
        "h": set(),
    }
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert shortest_cycle(graph, "a") == ["a", "b", "c", "a"]
    assert shortest_cycle(graph, "g") == []
    assert cycles({"x": {"y"}, "y": {"z"}, "z": set()}) == []
    chain = {str(i): {str(i + 1)} for i in range(5000)}  # deep: no recursion limit
    chain["5000"] = {"0"}
    assert cycles(chain) == [sorted(chain)]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_scan_resolves_every_import_form_and_keeps_typing_apart(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .core import proto\n",
            "pkg/core/__init__.py": "",
            "pkg/core/proto.py": "import json\nfrom . import wire\n",
            "pkg/core/wire.py": "from ..util import helper\n",
            "pkg/util.py": "import asyncio\n",
            "pkg/hub.py": (
                "from typing import TYPE_CHECKING\n"
                "import pkg.feature\n"
                "if TYPE_CHECKING:\n"
                "    from .core.proto import Thing\n"
                "else:\n"
                "    from pkg.core import wire\n"
            ),
            "pkg/feature.py": (
                "import typing\n"
                "if typing.TYPE_CHECKING:\n"
                "    from .hub import Hub\n"
                "def later():\n"
                "    from . import hub\n"
            ),
        },
    )
    pkg = scan(tmp_path, "pkg")
    edges = {(e.source, e.target, e.kind) for e in pkg.edges}
    assert edges == {
        ("pkg", "pkg.core.proto", "module"),
        ("pkg.core.proto", "pkg.core.wire", "module"),
        ("pkg.core.wire", "pkg.util", "module"),
        ("pkg.hub", "pkg.feature", "module"),
        ("pkg.hub", "pkg.core.proto", "typing"),
        ("pkg.hub", "pkg.core.wire", "module"),
        ("pkg.feature", "pkg.hub", "typing"),
        ("pkg.feature", "pkg.hub", "lazy"),
    }
    # The lazy import closes a circle; the typing-only one alone would not.
    assert cycles(pkg.graph()) == [["pkg.feature", "pkg.hub"]]
    assert cycles(pkg.graph(frozenset({"module"}))) == []
    assert "pkg.feature -> pkg.hub" in report(pkg)
    # asyncio reaches the "protocol core" through two package modules.
    assert io_imports(pkg, ["pkg.core.proto"]) == ["pkg.util:1 imports asyncio (module)"]
    assert io_imports(pkg, ["pkg.hub"]) == ["pkg.util:1 imports asyncio (module)"]
    assert io_imports(pkg, ["pkg.feature"]) == ["pkg.util:1 imports asyncio (module)"]
    # pkg.core is imported from pkg/__init__ and pkg.hub; the typing-only import is no use.
    assert importers(pkg, "pkg.core", ["pkg.core"]) == [
        "pkg.hub:6 imports pkg.core.wire (module)",
        "pkg:1 imports pkg.core.proto (module)",
    ]
    assert importers(pkg, "pkg.core", ["pkg.core", "pkg.hub"]) == [
        "pkg:1 imports pkg.core.proto (module)"
    ]
    assert importers(pkg, "pkg.hub", ["pkg.hubs"]) == ["pkg.feature:5 imports pkg.hub (lazy)"]


if __name__ == "__main__":
    print(report(scan(ROOT)))
    print("protocol core I/O imports:", io_imports(scan(ROOT), PROTOCOL_CORE) or "none")
