"""The layers (docs/architecture.md): the domain core imports no store, no application service
and no edge; the API and the pages hold no SQL; the application services import no edge."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDGES = {"adapters", "api", "web", "dags", "cli", "simulator", "pipeline"}
# Infrastructure and use cases inside the personkort package; everything else there is domain.
NOT_DOMAIN = ("store", "services", "audit")
NOT_DOMAIN_FILES = {"nightly.py"}  # the night's use case
PERSISTENCE = {"sqlalchemy", "alembic", "psycopg", "sqlite3"}
WIRING = {"app.py", "services.py"}  # the app factory and the container it fills
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+[\w*(]", re.IGNORECASE)


def imports(path: Path) -> set[str]:
    """Every module name imported, in full (``personkort.store.cards``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports(path)}


def domain_modules() -> list[Path]:
    out = []
    for path in sorted((ROOT / "personkort").rglob("*.py")):
        parts = path.relative_to(ROOT / "personkort").parts
        if parts[0] in NOT_DOMAIN or (path.name in NOT_DOMAIN_FILES and len(parts) == 1):
            continue
        out.append(path)
    return out


def test_the_domain_core_imports_no_store_no_service_and_no_edge() -> None:
    modules = domain_modules()
    assert {p.name for p in modules} >= {"card.py", "engine.py", "consents.py", "purpose.py"}
    offenders = {}
    for module in modules:
        bad = sorted(
            name
            for name in imports(module)
            if name.split(".")[0] in EDGES | PERSISTENCE
            or name.startswith(("personkort.store", "personkort.services", "personkort.audit"))
        )
        if bad:
            offenders[str(module.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_api_holds_no_sql_and_only_the_app_factory_knows_the_store() -> None:
    offenders = {}
    for module in sorted((ROOT / "api").rglob("*.py")):
        text = module.read_text(encoding="utf-8")
        bad = sorted(roots(module) & PERSISTENCE)
        if SQL.search(text):
            bad.append("SQL text")
        if module.name not in WIRING:
            bad += sorted(n for n in imports(module) if n.startswith("personkort.store"))
        if bad:
            offenders[module.name] = bad
    assert offenders == {}


def test_the_pages_hold_no_sql_and_reach_the_store_only_through_services() -> None:
    offenders = {}
    for module in sorted((ROOT / "web").rglob("*.py")):
        bad = sorted(roots(module) & PERSISTENCE)
        if SQL.search(module.read_text(encoding="utf-8")):
            bad.append("SQL text")
        bad += sorted(n for n in imports(module) if n.startswith("personkort.store"))
        if bad:
            offenders[module.name] = bad
    assert offenders == {}


def test_application_services_import_no_edge() -> None:
    for module in (ROOT / "personkort" / "services").rglob("*.py"):
        assert not roots(module) & EDGES, module


STATEMENT = re.compile(r"\bsa\.(select|insert|update|delete|text)\(")


def test_application_services_build_no_statements() -> None:
    """Every statement lives in a store repository; a service only calls them."""
    offenders = [
        module.name
        for module in sorted((ROOT / "personkort" / "services").rglob("*.py"))
        if STATEMENT.search(module.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_adapters_do_not_import_the_api_or_dags() -> None:
    for module in (ROOT / "adapters").rglob("*.py"):
        assert not roots(module) & {"api", "dags", "cli", "simulator"}, module
