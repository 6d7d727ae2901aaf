"""Opening the store: one URL setting, SQLite by default, migrated to the newest schema."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

DEFAULT_URL = "sqlite:///data/personkort.sqlite"
MIGRATIONS = Path(__file__).parent / "migrations"


def store_url(url: str | None = None) -> str:
    """The store URL: the argument, else ``PERSONKORT_STORE_URL``, else the embedded SQLite file."""
    return url or os.environ.get("PERSONKORT_STORE_URL") or DEFAULT_URL


def open_engine(url: str | None = None, *, timeout: float | None = None) -> sa.Engine:
    """An engine on the store, its schema migrated to the newest version. ``timeout`` (the
    API's): on PostgreSQL, connecting, each statement and each lock wait are bounded by it."""
    url = store_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # Enough kept-open connections for the API's worker threads: a connection beyond the
        # pool is opened and closed per use, and a new server backend per lookup is slow.
        pool = int(os.environ.get("PERSONKORT_POOL_SIZE", "20"))
        connect_args = {"connect_timeout": max(1, round(timeout))} if timeout else {}
        engine = sa.create_engine(
            url,
            pool_size=pool,
            max_overflow=pool,
            pool_timeout=timeout or 30,
            connect_args=connect_args,
        )
        if timeout:
            sa.event.listen(engine, "connect", _pg_timeouts(timeout))
    migrate(engine)
    return engine


def migrate(engine: sa.Engine) -> None:
    """Apply every Alembic migration the database has not seen yet."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _pg_timeouts(seconds: float):  # type: ignore[no-untyped-def]
    """Server-side bounds for every new connection: a statement or a lock wait that runs past
    them is cancelled by the server (a hung server needs the caller's deadline as well)."""
    statement, lock = int(seconds * 1000), max(100, int(seconds * 500))

    def apply(dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"SET statement_timeout = {statement}")
        cursor.execute(f"SET lock_timeout = {lock}")
        cursor.close()
        dbapi_connection.commit()  # type: ignore[attr-defined]

    return apply


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")  # readers keep reading while a night writes
    cursor.execute("PRAGMA synchronous=FULL")  # a commit (an audit event) survives a power cut
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()
