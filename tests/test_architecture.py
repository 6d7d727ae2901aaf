"""The domain core imports nothing from the edges (adapters, api, dags, cli, simulator)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGES = {"adapters", "api", "dags", "cli", "simulator", "pipeline"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_core_does_not_import_the_edges() -> None:
    modules = sorted((ROOT / "personkort").rglob("*.py"))
    assert modules
    offenders = {
        str(m.relative_to(ROOT)): sorted(imported_roots(m) & EDGES)
        for m in modules
        if imported_roots(m) & EDGES
    }
    assert offenders == {}


def test_adapters_do_not_import_the_api_or_dags() -> None:
    for module in (ROOT / "adapters").rglob("*.py"):
        assert not imported_roots(module) & {"api", "dags", "cli", "simulator"}, module
