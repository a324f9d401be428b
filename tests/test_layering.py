"""The package layers, checked on the import graph of ``src/unetkit`` computed from the source (AST).

Every import statement counts: module level, inside functions and under ``if TYPE_CHECKING:`` (imports by a
computed name, ``importlib.import_module(name)``, cannot be seen). Relative imports are resolved, and
``from unetkit.x import y`` is an import of the module ``unetkit.x.y`` when that module exists (else of
``unetkit.x``). A package's ``__init__`` is a module of its own: importing ``unetkit.a.b`` is not counted as
importing ``unetkit.a``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
GROUND_FLOOR = ("unetkit.errors", "unetkit.atomic", "unetkit.config_base", "unetkit.inference_config")

# The rules: (importer, rule, targets). A name covers the module and everything below it ("unetkit.models"
# is the package and all its modules); "torch" is the third-party package.
#   never reaches  - not imported directly, nor through any chain of unetkit modules
#   imports only   - its imports of unetkit modules outside itself are all among the targets
# The same table is in docs/ARCHITECTURE.md ("Layering rules"); test_docs_show_the_rules keeps them equal.
# Besides these rules, no module may take part in an import circle.
RULES = [
    ("unetkit.project", "never reaches", ("torch",)),
    ("unetkit.dtl", "never reaches", ("torch",)),
    ("unetkit.inference", "never reaches", ("unetkit.training", "unetkit.studio")),
    ("unetkit.serving", "never reaches", ("unetkit.training", "unetkit.studio")),
    ("unetkit.training", "never reaches", ("unetkit.studio", "unetkit.cli")),
    ("unetkit.auto", "never reaches", ("unetkit.studio", "unetkit.cli")),
    ("unetkit.studio", "never reaches", ("unetkit.cli",)),
    ("unetkit.models", "imports only", GROUND_FLOOR),
    *((name, "imports only", GROUND_FLOOR) for name in GROUND_FLOOR),
]


def covers(name: str, module: str) -> bool:
    return module == name or module.startswith(name + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def sources() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "unetkit").rglob("*.py"))}


def imported_names(module: str, path: Path) -> set[str]:
    """Absolute names of everything ``module`` imports (ours resolved to modules, third-party as written)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*base, *([node.module] if node.module else [])])
            else:
                base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in sources() else base)
    return out


@cache
def graph() -> dict[str, set[str]]:
    """module -> the names it imports (unetkit modules and third-party names)."""
    return {module: imported_names(module, path) for module, path in sources().items()}


def chain(start: str, target: str) -> list[str] | None:
    """The shortest import chain from ``start`` to a name covered by ``target`` (through unetkit modules)."""
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    for module in queue:
        for name in sorted(graph().get(module, ())):
            if name in parents:
                continue
            parents[name] = module
            if covers(target, name):
                path = [name]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return path[::-1]
            if name in graph():
                queue.append(name)
    return None


def cycles() -> list[list[str]]:
    """One circle per strongly connected group of unetkit modules (Tarjan), as a closed import chain."""
    edges = {m: sorted(n for n in names if n in graph()) for m, names in graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges[v]:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for group in groups:
        start = min(group)
        back = next(p for p in (chain_within(w, start, group) for w in edges[start] if w in group) if p)
        out.append([start, *back])
    return out


def chain_within(start: str, target: str, group: set[str]) -> list[str] | None:
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    for module in queue:
        if module == target:
            path = [module]
            while parents[path[-1]] is not None:
                path.append(parents[path[-1]])
            return path[::-1]
        for name in sorted(graph()[module]):
            if name in group and name not in parents:
                parents[name] = module
                queue.append(name)
    return None


def violations() -> list[str]:
    found = []
    for who, rule, targets in RULES:
        for module in sorted(m for m in graph() if covers(who, m)):
            if rule == "never reaches":
                for target in targets:
                    path = chain(module, target)
                    if path:
                        found.append(f"{who} never reaches {target}: " + " -> ".join(path))
            else:
                ours = {n for n in graph()[module] if covers("unetkit", n) and not covers(who, n)}
                for name in sorted(ours):
                    if not any(covers(t, name) for t in targets):
                        found.append(f"{who} imports only {', '.join(targets)}: {module} imports {name}")
    return found


def test_no_import_circles():
    found = cycles()
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_layering_rules_hold():
    found = violations()
    assert not found, "layering rules broken:\n" + "\n".join(found)


def rules_table() -> str:
    lines = ["| package | rule | targets |", "|---|---|---|"]
    lines += [
        f"| `{who}` | {rule} | {', '.join(f'`{t}`' for t in targets)} |" for who, rule, targets in RULES
    ]
    return "\n".join(lines)


def test_docs_show_the_rules():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert rules_table() in doc, (
        "docs/ARCHITECTURE.md 'Layering rules' must hold this table:\n" + rules_table()
    )


# ------------------------------------------------------------------------------- the checker checks itself


def test_graph_resolves_every_kind_of_import():
    edges = graph()
    assert len(edges) > 100 and all(covers("unetkit", m) for m in edges)
    assert "unetkit.errors" in edges["unetkit.project.io"]  # absolute, module level
    assert "unetkit.atomic" in edges["unetkit.project.io"]  # `from unetkit import atomic` is the submodule
    assert "torch" in edges["unetkit.models.blocks"]  # third-party kept by name
    for module, names in edges.items():
        for name in names:
            if covers("unetkit", name):
                assert name in edges, f"{module} imports {name}, which is not a module in src/"


def test_checker_finds_what_it_must(monkeypatch, tmp_path):
    """A function-level, a TYPE_CHECKING and a relative import each count; circles and broken rules show."""
    files = {
        "__init__.py": "",
        "errors.py": "",
        "project/__init__.py": "from .a import A\n",
        "project/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from unetkit.project import b\n",
        "project/b.py": "def f():\n    from . import a\n    from ..training import c\n",
        "training/__init__.py": "",
        "training/c.py": "import torch.nn\n",
        "models/__init__.py": "from unetkit import errors\nfrom unetkit.project import A\n",
    }
    for name, text in files.items():
        (tmp_path / "unetkit" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "unetkit" / name).write_text(text)
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    for fn in (sources, graph):
        fn.cache_clear()
    try:
        assert cycles() == [["unetkit.project.a", "unetkit.project.b", "unetkit.project.a"]]
        tail = "unetkit.project.b -> unetkit.training.c -> torch.nn"
        assert violations() == [
            f"unetkit.project never reaches torch: unetkit.project -> unetkit.project.a -> {tail}",
            f"unetkit.project never reaches torch: unetkit.project.a -> {tail}",
            f"unetkit.project never reaches torch: {tail}",
            "unetkit.models imports only unetkit.errors, unetkit.atomic, unetkit.config_base, "
            "unetkit.inference_config: unetkit.models imports unetkit.project",
        ]
    finally:
        for fn in (sources, graph):
            fn.cache_clear()
