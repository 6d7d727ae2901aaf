"""Shared fixtures: the shared sample drop folders and the PostgreSQL test server.

PostgreSQL tests run when the server at ``PERSONKORT_TEST_PG_URL`` answers. On a machine without
one they skip with a visible reason, unless ``PERSONKORT_REQUIRE_PG=1`` (set by ``.ci/run``), where
an unreachable server fails the run instead of hiding it.
"""

from __future__ import annotations

import asyncio
import csv
import os
import threading
import uuid
import weakref
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

T = TypeVar("T")

# The suite runs in development mode: keys that are not configured are development keys.
os.environ.setdefault("PERSONKORT_DEV_MODE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PERSONKORT_SHARED", ROOT.parent / "shared"))
SAMPLE = SHARED / "registers" / "sample"
PG_URL = os.environ.get(
    "PERSONKORT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def sample() -> Path:
    if not SAMPLE.is_dir():
        pytest.fail(f"shared sample registers not found at {SAMPLE} (set PERSONKORT_SHARED)")
    return SAMPLE


@pytest.fixture(params=["night1", "night2"])
def night(request: pytest.FixtureRequest, sample: Path) -> Path:
    return sample / request.param


@pytest.fixture(scope="session")
def pg_engine(worker_id: str) -> Iterator[sa.Engine]:
    """A PostgreSQL engine whose search_path is a schema of this test worker's own."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL not reachable at {PG_URL}: {exc.orig}"
        if os.environ.get("PERSONKORT_REQUIRE_PG") == "1":
            pytest.fail(message)
        pytest.skip(message)
    schema = f"pktest_{worker_id}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def _pg_available() -> str | None:
    """None when the PostgreSQL test server answers, else why not."""
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.OperationalError as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc.orig}"
    finally:
        engine.dispose()


# Every engine a test connects through, so its idle connections can be closed when the test
# ends: tests open engines (with pools of 20) and seldom dispose them, and the leaked idle
# connections of two xdist workers once used up PostgreSQL's 100 ("too many clients already").
_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


@sa.event.listens_for(sa.engine.Engine, "engine_connect")
def _remember_engine(connection: sa.Connection) -> None:
    _ENGINES.add(connection.engine)


@pytest.fixture(autouse=True)
def _close_idle_connections() -> Iterator[None]:
    """After each test, close the pooled connections of every engine it used (an engine stays
    usable: it connects again when next asked)."""
    yield
    for engine in list(_ENGINES):
        if engine.dialect.name == "postgresql":
            engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    for schema in pg_schema("pk"):
        yield schema_url(schema)


def schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def pg_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL schema of the caller's own, dropped afterwards (yields its name). Skipped
    when the server does not answer, failed instead under ``PERSONKORT_REQUIRE_PG=1``."""
    problem = _pg_available()
    if problem:
        if os.environ.get("PERSONKORT_REQUIRE_PG") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: a session's Playwright browser keeps an event
    loop running in the test's thread, where ``asyncio.run`` refuses to start."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="run-async")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
