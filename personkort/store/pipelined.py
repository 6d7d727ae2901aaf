"""Several reads in one round trip on PostgreSQL, through the driver.

A card read from the store is six statements (the card, its records, earlier numbers, benefits,
measures, services). Through SQLAlchemy each was a round trip of its own, and most of a
statement's client CPU was SQLAlchemy's execution machinery, not the answer: a first-sight
lookup cost about four warm ones. On psycopg the statements are sent together in one pipeline,
as prepared statements, and read back as named tuples with the columns' names, each value
through its column's result processor (the one SQLAlchemy would apply), so a row reads as
SQLAlchemy's would. On any other database (SQLite) they run one by one through SQLAlchemy.

Driver errors are raised as SQLAlchemy's (a lookup answers 503 for them as for any store
error), and a broken connection leaves the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True, slots=True)
class _Compiled:
    text: str
    types: tuple[sa.types.TypeEngine[Any], ...]  # each result column's type, in order


# By statement (held here: they are module constants) and dialect; by statement and the
# columns' database types.
_compiled: dict[tuple[sa.Select[Any], str], _Compiled] = {}
_Steps = tuple[tuple[int, Callable[..., Any]], ...]  # (column index, result processor)
_processors: dict[tuple[sa.Select[Any], tuple[int, ...]], _Steps] = {}


def on_driver(conn: sa.Connection) -> bool:
    """Whether ``conn`` is a psycopg connection, which these reads use directly."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def read_all(
    conn: sa.Connection, reads: Sequence[tuple[sa.Select[Any], Mapping[str, Any]]]
) -> list[list[Any]]:
    """Each (statement, parameters)'s rows: in one round trip on psycopg.

    The statements are built once (module constants): their compiled text is kept by
    statement. Fixed statements only: an expanding IN list or a literal is refused.
    """
    if not on_driver(conn):
        return [list(conn.execute(s, dict(p)).all()) for s, p in reads]
    from psycopg.rows import namedtuple_row

    compiled = [_compile(conn, s) for s, _ in reads]
    driver = conn.connection.driver_connection
    with translated(conn, "pipelined read"):
        cursors = [driver.cursor(row_factory=namedtuple_row) for _ in compiled]  # type: ignore[union-attr]
        try:
            with driver.pipeline():  # type: ignore[union-attr]
                for cur, c, (_, params) in zip(cursors, compiled, reads, strict=True):
                    cur.execute(c.text, params, prepare=True)  # type: ignore[arg-type]
            return [
                _processed(conn, s, c, cur)
                for (s, _), c, cur in zip(reads, compiled, cursors, strict=True)
            ]
        finally:
            for cur in cursors:
                cur.close()


@contextmanager
def translated(conn: sa.Connection, what: str) -> Iterator[None]:
    """Run driver calls on ``conn``, their errors raised as SQLAlchemy's."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            conn.invalidate()
            raise sa.exc.OperationalError(what, None, exc) from exc
        raise sa.exc.DatabaseError(what, None, exc) from exc


def _compile(conn: sa.Connection, statement: sa.Select[Any]) -> _Compiled:
    key = (statement, conn.dialect.name)
    found = _compiled.get(key)
    if found is not None:
        return found
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("read_all runs prepared statements: no IN lists or literal parameters")
    made = _Compiled(str(compiled), tuple(c.type for c in statement.selected_columns))
    _compiled[key] = made  # two threads compiling at once make equal values: either is kept
    return made


def _processed(conn: sa.Connection, statement: sa.Select[Any], c: _Compiled, cur: Any) -> list[Any]:
    rows = cur.fetchall()
    if not rows:
        return rows
    codes = tuple(d.type_code for d in cur.description)
    key = (statement, codes)
    steps = _processors.get(key)
    if steps is None:
        dialect = conn.dialect
        steps = tuple(
            (i, process)
            for i, (type_, code) in enumerate(zip(c.types, codes, strict=True))
            if (process := type_.dialect_impl(dialect).result_processor(dialect, code)) is not None
        )
        _processors[key] = steps
    if not steps:
        return rows
    make = type(rows[0])._make
    out = []
    for row in rows:
        values = list(row)
        for i, process in steps:
            values[i] = process(values[i])
        out.append(make(values))
    return out
