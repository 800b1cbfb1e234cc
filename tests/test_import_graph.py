"""The package's layers: a module imports its own package and lower layers only (late imports
inside functions count too), so no package reaches upward and no two packages import each
other. A new package must be given its layer here."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "copytrace"

# Lowest first. Packages in one layer are peers: they may not import each other.
LAYERS = [
    {"errors", "types"},
    {"deadline", "progress"},  # a request's time limit and progress, from the media loops
    {"media"},
    {"models"},
    {"runtime", "quant", "index", "align", "verify", "eval", "ledger", "text"},
    {"store", "config"},
    {"signals"},  # one module per signal (signals/base.py: the interface)
    {"train"},
    {"recipes"},
    {"engine"},
    {"__init__"},  # the public API (copytrace.open) over the engine
    {"report", "demo", "evidence", "ingest"},  # ingest: bulk registration (Ray)
    {"server"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _unit(path: Path) -> str:
    """The first component under copytrace/: a subpackage, a top-level module, or __init__."""
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def _imported_units(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "copytrace":  # from copytrace import engine, errors, ...
                names = [f"copytrace.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "copytrace":
                out.add(parts[1] if len(parts) > 1 else "__init__")
    return out


def edges() -> set[tuple[str, str, str]]:
    found = set()
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        for target in _imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if target != unit:
                found.add((unit, target, str(path.relative_to(SRC))))
    return found


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in SRC.rglob("*.py")}
    assert units - RANK.keys() == set(), "give these packages a layer in LAYERS"


def test_no_upward_or_sideways_imports():
    bad = sorted(f"{where}: {src} imports {dst}" for src, dst, where in edges()
                 if dst in RANK and RANK[dst] >= RANK[src])
    assert bad == []


def test_the_checker_sees_late_imports():
    tree = ast.parse("def f():\n    from copytrace.engine import Library\n"
                     "from copytrace import media, errors\nimport copytrace.store.catalog\n")
    assert _imported_units(tree) == {"engine", "media", "errors", "store"}
