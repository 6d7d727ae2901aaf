"""The migrations build the schema the models declare: an index or column a model changes and
no migration does would make a new store and an upgraded one differ."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import personkort.audit.models  # noqa: F401  (the audit tables share the store's metadata)
from personkort.store import feed, open_engine
from personkort.store.models import Base

# 0009 widens these to 16 characters on PostgreSQL only: SQLite does not enforce a VARCHAR's
# length, so its declared 12 stays.
# an index searched by its key column's value, not a range of nights
KEY_SEARCH = re.compile(r"USING INDEX ix_feed_\w+ \((number|person_key|holder|related)=\?")
SQLITE_LENGTHS = {("quarantine", "register"), ("finding", "register")}


def _sqlite_length_only(diff: Any) -> bool:
    return (
        isinstance(diff, list)
        and len(diff) == 1
        and diff[0][0] == "modify_type"
        and (diff[0][2], diff[0][3]) in SQLITE_LENGTHS
    )


def test_the_migrations_build_the_schema_the_models_declare(store_url: str) -> None:
    engine = open_engine(store_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    if engine.dialect.name == "sqlite":
        diffs = [d for d in diffs if not _sqlite_length_only(d)]
    assert diffs == []


def test_the_feed_tables_keep_one_index_per_key_column(store_url: str) -> None:
    """Each key column is found through its (column, valid_to) index; one of its own beside
    it only cost a full night another B-tree per row (0011)."""
    engine = open_engine(store_url)
    inspector = sa.inspect(engine)
    leading = {
        table: sorted(i["column_names"][0] for i in inspector.get_indexes(table))
        for table in ("feed_person", "feed_ident", "feed_relation")
    }
    assert leading == {
        "feed_person": ["person_key", "valid_from", "valid_to"],
        "feed_ident": ["number", "person_key", "valid_from", "valid_to"],
        "feed_relation": ["holder", "related", "valid_from", "valid_to"],
    }


def test_a_lookups_feed_statements_search_an_index_on_sqlite(tmp_path: Path) -> None:
    """Without its own index, a key column must still be searched through its composite one:
    a scan of a million feed rows per lookup would pass every functional test."""
    engine = open_engine(f"sqlite:///{tmp_path / 'plans.sqlite'}")
    statements = [feed._KEYS_OF_NUMBERS, feed._NUMBERS_OF_KEYS, feed._PERSONS]
    statements += list(feed._RELATIONS.values())
    with engine.connect() as conn:
        for statement in statements:
            sql = statement.params(values=["01810054545", "02857690071"], night=1).compile(
                engine, compile_kwargs={"literal_binds": True, "render_postcompile": True}
            )
            plan = " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert KEY_SEARCH.search(plan) and "SCAN" not in plan, plan


def test_driver_rows_reads_whole_tables_and_refuses_an_in_list(store_url: str) -> None:
    from personkort.store import models as m
    from personkort.store.nights import driver_rows

    engine = open_engine(store_url)
    t = m.FeedPersonRow
    with engine.connect() as conn:
        assert driver_rows(conn, sa.select(t.digest).where(t.valid_to.is_(None))) == []
        with pytest.raises(ValueError, match="no IN lists"):
            driver_rows(conn, sa.select(t.digest).where(t.person_key.in_(["1", "2"])))
