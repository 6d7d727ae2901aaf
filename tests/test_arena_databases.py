"""The Arena adapter reads through SQLAlchemy: the SQLite sample, the same data in PostgreSQL,
and incrementally by MOD_DATO."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_arena

TABLES = ("PERSON", "PERSON_IDENT_HIST", "VEDTAK", "TILTAKDELTAKER")


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.mark.postgres
def test_postgres_copy_reads_the_same_as_sqlite(sample: Path, pg_engine: sa.Engine) -> None:
    source = sample / "night1" / "arena" / "arena.sqlite"
    with sqlite3.connect(source) as db:
        ddl = {name: sql for name, sql in db.execute("SELECT name, sql FROM sqlite_master")}
        rows = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    with pg_engine.begin() as conn:
        for table in TABLES:
            # A legacy extract keeps its broken dates ('0000-00-00'), so dates travel as text.
            create = re.sub(r"\b(DATE|TIMESTAMP)\b", "VARCHAR(19)", ddl[table])
            create = create.replace("INTEGER", "BIGINT")  # Oracle NUMBER keys exceed int4
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(sa.text(create))
            if rows[table]:
                marks = ", ".join(f":c{i}" for i in range(len(rows[table][0])))
                conn.execute(
                    sa.text(f"INSERT INTO {table} VALUES ({marks})"),
                    [{f"c{i}": v for i, v in enumerate(row)} for row in rows[table]],
                )
    from_pg = read_arena(pg_engine)
    from_sqlite = read_arena(_sqlite_url(source))
    assert from_pg.persons == from_sqlite.persons
    assert from_pg.state_benefits == from_sqlite.state_benefits
    assert from_pg.measures == from_sqlite.measures
    assert from_pg.ident_history == from_sqlite.ident_history
    # The raw text differs only as drivers print numbers (700.00 / 700).
    assert [(q.location, q.reason) for q in from_pg.quarantine] == [
        (q.location, q.reason) for q in from_sqlite.quarantine
    ]
    assert [c.read for c in from_pg.counts] == [c.read for c in from_sqlite.counts]


def test_incremental_extract_reads_only_changed_rows(sample: Path, tmp_path: Path) -> None:
    path = tmp_path / "arena.sqlite"
    shutil.copy(sample / "night1" / "arena" / "arena.sqlite", path)
    path.chmod(0o644)
    with sqlite3.connect(path) as db:
        (latest,) = db.execute("SELECT MAX(MOD_DATO) FROM PERSON").fetchone()
        db.execute(
            "UPDATE PERSON SET ADRESSELINJE='Nyveien 1', MOD_DATO='2026-11-21 02:00:00' "
            "WHERE PERSON_ID=1002"
        )
        db.execute("UPDATE VEDTAK SET MOD_DATO='2026-11-21 02:00:00' WHERE VEDTAK_ID=10010")
    since = dt.datetime.fromisoformat(latest)
    extract = read_arena(_sqlite_url(path), since=since)
    assert [(p.source_key, p.address) for p in extract.persons] == [("1002", "Nyveien 1")]
    assert [b.location for b in extract.state_benefits] == ["VEDTAK:10010"]
    assert [h.source_key for h in extract.ident_history] == ["1002"]
    assert extract.measures == []
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined
    full = read_arena(_sqlite_url(path))
    assert len(full.persons) > 50


def test_orphans_and_dependants_of_quarantined_people(sample: Path) -> None:
    extract = read_arena(_sqlite_url(sample / "night1" / "arena" / "arena.sqlite"))
    reasons = {q.location: q.reason for q in extract.quarantine}
    assert reasons["VEDTAK:9000000000"].startswith("orphan PERSON_ID")
    assert reasons["TILTAKDELTAKER:10080"] == "its person PERSON:1008 is quarantined"
    kept = {b.source_key for b in extract.state_benefits} | {m.source_key for m in extract.measures}
    assert not kept & {"1007", "1008"}
