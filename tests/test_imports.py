"""No import circles between the modules of the package: arrows point one way, down toward names, errors and config.

Only imports that run when a module is imported count: those at module level (also inside module-level `if`/`try`
and class bodies). Imports inside functions are lazy and allowed, and so are `if TYPE_CHECKING:` imports (never run).
Relative imports are resolved; `from fusion.x import y` where `y` is a submodule is an edge to `fusion.x.y`.

The tests keep the same discipline: no test imports from another test module (helpers live in conftest fixtures or
in tests/support/).
"""

from __future__ import annotations

import ast
from pathlib import Path

import fusion

PACKAGE_DIR = Path(fusion.__file__).parent


def module_files(package_dir: Path) -> dict[str, Path]:
    "Dotted module name -> file, for every module of the package rooted at `package_dir`."
    root = package_dir.name
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((root, *parts))] = path
    return out


def _eager_statements(body: list[ast.stmt]):
    "The statements that run at import: recurse into if/try/with/class bodies, not into functions or TYPE_CHECKING."
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
            yield from _eager_statements(stmt.orelse)
            continue
        yield stmt
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list):
                yield from _eager_statements([s for s in inner if isinstance(s, ast.stmt)]
                                             + [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    "The package's modules that module `name` (file `path`) imports at import time."
    is_package = path.name == "__init__.py"
    found = set()
    for stmt in _eager_statements(ast.parse(path.read_text(encoding="utf-8"), str(path)).body):
        if isinstance(stmt, ast.Import):
            found |= {a.name for a in stmt.names}
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (stmt.level - 1)]
                target = ".".join(base + ([stmt.module] if stmt.module else []))
            else:
                target = stmt.module or ""
            for alias in stmt.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {m for m in found if m in modules and m != name}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    "module -> the package's modules it imports at import time."
    files = module_files(package_dir)
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "One cycle (a -> b -> ... -> a) for each strongly connected group of modules that import each other (Tarjan)."
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_through(group, graph) for group in groups]


def _path_through(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    "A shortest cycle inside `group`, starting and ending at its first module (breadth-first)."
    start = min(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in {group}")  # a strongly connected group always has one


def test_the_package_has_no_import_cycles():
    found = cycles(import_graph(PACKAGE_DIR))
    assert found == [], "import cycles (module-level imports):\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_graph_sees_the_package():
    graph = import_graph(PACKAGE_DIR)
    assert {"fusion.errors", "fusion.config", "fusion.commands.app", "fusion.pipelines.ingest.nodes"} <= set(graph)
    assert "fusion.config" in graph["fusion.commands.app"]  # `from fusion.config import Settings` (relative in the file)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "pkg"


def test_a_cycle_is_found_and_named(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import b\n",  # a submodule imported by name: an edge to pkg.sub.b
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "from ..c import thing\n",
        "pkg/c.py": "import pkg.a\nthing = 1\n",
        "pkg/d.py": "def lazy():\n    from pkg import a\n",  # inside a function: allowed
    })
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]


def test_lazy_and_type_checking_imports_do_not_count(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
                     "def f():\n    from pkg.a import x\nclass K:\n    def m(self):\n        import pkg.a\n"),
    })
    assert import_graph(pkg) == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert cycles(import_graph(pkg)) == []


def test_imports_in_module_level_blocks_count(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "try:\n    from pkg.b import y\nexcept ImportError:\n    pass\n",
        "pkg/b.py": "import sys\nif sys.version_info > (3,):\n    from . import a\ny = 1\n",
    })
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.a"]]



TESTS_DIR = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    return dotted.rsplit(".", 1)[-1].startswith("test_")


def imports_of_test_modules(tests_dir: Path = TESTS_DIR) -> dict[str, list[str]]:
    "test file -> the test modules (test_*.py) it imports from, anywhere in the file (relative imports resolved)."
    out = {}
    for path in sorted(tests_dir.rglob("*.py")):
        parts = ("tests", *path.relative_to(tests_dir).with_suffix("").parts)
        package = list(parts[:-1])
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if _is_test_module(a.name)}
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - (node.level - 1)] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                if _is_test_module(module):
                    found.add(module)
                found |= {f"{module}.{a.name}" for a in node.names if _is_test_module(a.name)}
        if found:
            out[str(path.relative_to(tests_dir))] = sorted(found)
    return out


def test_no_test_imports_another_test_module():
    found = imports_of_test_modules()
    assert found == {}, ("shared helpers belong in conftest fixtures or tests/support/, not in test modules:\n"
                         + "\n".join(f"{k}: {v}" for k, v in found.items()))


def test_test_module_imports_are_found(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "test_x.py").write_text("from .test_y import helper\nimport tests.b.test_z\nfrom . import test_w\n"
                                              "from . import conftest\n")
    (tmp_path / "test_ok.py").write_text("from tests.support.project import ROOT\n")
    assert imports_of_test_modules(tmp_path) == {"a/test_x.py": ["tests.a.test_w", "tests.a.test_y", "tests.b.test_z"]}
