"""Arena-style employment register, read through SQLAlchemy from any database URL.

Columns are upper case and unquoted in the SQL, so the same statements read the SQLite sample,
PostgreSQL (which folds them to lower case) and Oracle. Dates may arrive as text or as driver
dates. ``since`` extracts incrementally: only rows whose ``MOD_DATO`` is later.

Dependants (decisions, measures, identity history) of a person row that does not exist are
orphans; dependants of a person row quarantined in the same extract are quarantined with it, so
that nothing hangs off a person the store never saw.

SQLite keeps whatever a column is given: a BLOB identity number, text in an ``INTEGER`` key, text
that is not UTF-8. Each is a quarantined row (located by its row number where its key is not an
integer), never an exception; a file that is not an Arena database at all is refused whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from adapters import limits, schemas
from adapters.boundary import (
    BadValue,
    Boundary,
    RefusedSource,
    as_text,
    blank_to_none,
    check_fits,
    parse_date,
    parse_decimal,
    parse_int,
    parse_timestamp,
    short_error,
)
from personkort.ident import normalise
from personkort.records import (
    Extract,
    IdentHistory,
    Measure,
    PersonRecord,
    Protection,
    Register,
    StateBenefit,
)

A = Register.ARENA

_PERSON_COLS = (
    "PERSON_ID, FODSELSNR, FORNAVN, MELLOMNAVN, ETTERNAVN, FODSELSDATO, ADRESSELINJE, POSTNR, "
    "POSTSTED, KOMMUNENR, TELEFON, DISKRESJONSKODE, ER_EGEN_ANSATT, FORMIDLINGSGRUPPEKODE, "
    "KVALIFISERINGSGRUPPEKODE, NAV_KONTOR, VEILEDER_IDENT, DOEDSDATO, REG_DATO, MOD_DATO"
)
_VEDTAK_COLS = (
    "VEDTAK_ID, PERSON_ID, SAKSKODE, VEDTAKSTATUS, FRA_DATO, TIL_DATO, DAGSATS, BEGRUNNELSE, "
    "REG_DATO, MOD_DATO"
)
_TILTAK_COLS = (
    "DELTAKER_ID, PERSON_ID, TILTAKSKODE, DELTAKERSTATUS, FRA_DATO, TIL_DATO, ARRANGOR, "
    "REG_DATO, MOD_DATO"
)
_PROTECTION = {"SPSF": Protection.STRENGT_FORTROLIG, "SPFO": Protection.FORTROLIG}
_PERSON_TEXT = tuple(
    c.strip()
    for c in _PERSON_COLS.split(",")
    if c.strip() not in {"PERSON_ID", "FODSELSDATO", "DOEDSDATO", "REG_DATO", "MOD_DATO"}
)


def read_arena(url: str | sa.Engine, *, since: dt.datetime | None = None) -> Extract:
    """Read the Arena register at ``url``; with ``since``, only rows changed after it. A database
    that cannot be read as Arena (a file that is no SQLite database, a table or column missing)
    is refused whole; a database server that cannot be reached raises, as before."""
    engine = sa.create_engine(url) if isinstance(url, str) else url
    try:
        with engine.connect() as conn:
            try:
                return _read(conn, since)
            except sa.exc.OperationalError as exc:
                if not _undecodable_text(conn, exc):
                    raise
            # Text that is not UTF-8 stops SQLite's own decoding: read again, decoding leniently
            # (rare, so the usual read keeps SQLite's fast decoder), and quarantine those rows.
            conn.rollback()
            with _lenient_text(conn):
                return _read(conn, since)
    except sa.exc.DBAPIError as exc:
        transient = (sa.exc.OperationalError, sa.exc.InterfaceError)
        if engine.dialect.name != "sqlite" and isinstance(exc, transient):
            raise  # a server that cannot be reached now: the caller (the DAG's task) retries
        reason = f"the Arena database could not be read: {short_error(exc)}"
        raise RefusedSource(A, "arena", reason) from None
    finally:
        if isinstance(url, str):
            engine.dispose()


def _undecodable_text(conn: sa.Connection, exc: sa.exc.OperationalError) -> bool:
    return conn.dialect.name == "sqlite" and "decode" in str(exc.orig).lower()


@contextmanager
def _lenient_text(conn: sa.Connection) -> Iterator[None]:
    """SQLite text decoded with undecodable bytes kept as lone surrogates, which the boundary
    quarantines as not being text."""
    raw: Any = conn.connection.dbapi_connection
    before = raw.text_factory
    raw.text_factory = _decode
    try:
        yield
    finally:
        raw.text_factory = before


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _key(value: object) -> int | None:
    """A key as an integer, or None where it is not one."""
    try:
        return parse_int(value, "key")
    except BadValue:
        return None


def _location(table: str, value: object, row: int) -> str:
    """``TABLE:key``, or ``TABLE:row:N`` (its place in key order) for a key that is not an
    integer: such a key may be any text, and a location is shown in clear."""
    key = _key(value)
    return f"{table}:{key}" if key is not None else f"{table}:row:{row}"


def _select(
    conn: sa.Connection, cols: str, table: str, since: dt.datetime | None
) -> Iterator[dict[str, Any]]:
    key = cols.split(",", 1)[0]
    if since is None:
        return _upper(conn.execute(sa.text(f"SELECT {cols} FROM {table} ORDER BY {key}")))
    stamp = since.strftime("%Y-%m-%d %H:%M:%S")
    return _upper(
        conn.execute(
            sa.text(f"SELECT {cols} FROM {table} WHERE MOD_DATO > :since ORDER BY {key}"),
            {"since": stamp},
        )
    )


def _upper(result: sa.CursorResult[Any]) -> Iterator[dict[str, Any]]:
    """Rows keyed by upper-case column names, whatever case the database folds to (the names
    folded once, the rows fetched in batches: this runs for every row of every night)."""
    names = [name.upper() for name in result.keys()]  # noqa: SIM118 - not a dict: columns
    for batch in result.partitions(20_000):
        for row in batch:
            yield dict(zip(names, row, strict=True))


def _read(conn: sa.Connection, since: dt.datetime | None) -> Extract:
    out = Extract()
    existing = {_key(r[0]) for r in conn.execute(sa.text("SELECT PERSON_ID FROM PERSON"))}
    existing.discard(None)

    people = Boundary(A, "PERSON")
    person_ids: dict[str, int] = {}  # location -> PERSON_ID, for the rows whose key is one
    for n, row in enumerate(_select(conn, _PERSON_COLS, "PERSON", since), start=1):
        _person_candidate(people, row, n, person_ids)
    for row, loc in people.validated(schemas.ArenaPerson):
        out.persons.append(_person_record(row, loc))
        people.check_ident(loc, row["FODSELSNR"], "FODSELSNR")
        people.check_kommune(loc, row["KOMMUNENR"], "KOMMUNENR")
    quarantined = {person_ids[q.location] for q in people.quarantine if q.location in person_ids}
    read_ids = {int(p.source_key) for p in out.persons}
    people.finish(out)

    def owner_problem(person_id: int | None) -> str | None:
        if person_id is None or person_id not in existing:
            return "orphan PERSON_ID: no PERSON row with that key"
        if person_id in quarantined:
            return f"its person PERSON:{person_id} is quarantined"
        return None

    hist = Boundary(A, "PERSON_IDENT_HIST")
    hist_rows = _upper(
        conn.execute(
            sa.text(
                "SELECT PERSON_ID, FODSELSNR, GYLDIG_FRA, GYLDIG_TIL FROM PERSON_IDENT_HIST "
                "ORDER BY PERSON_ID, GYLDIG_FRA, FODSELSNR"
            )
        )
    )
    ordinal: dict[int | None, int] = {}
    for n, row in enumerate(hist_rows, start=1):
        pid = _key(row["PERSON_ID"])
        if since is not None and pid not in read_ids:
            continue  # incremental: history travels with its changed person row
        ordinal[pid] = ordinal.get(pid, 0) + 1
        loc = (
            f"PERSON_IDENT_HIST:{pid}#{ordinal[pid]}"
            if pid is not None
            else f"PERSON_IDENT_HIST:row:{n}"
        )
        _dependant(hist, row, loc, owner_problem, _hist_values)
    for row, loc in hist.validated(schemas.ArenaIdentHist):
        out.ident_history.append(
            IdentHistory(
                A,
                str(row["PERSON_ID"]),
                loc,
                row["FODSELSNR"],
                row["GYLDIG_FRA"],
                row["GYLDIG_TIL"],
            )
        )
        hist.check_ident(loc, row["FODSELSNR"], "FODSELSNR")
    hist.finish(out)

    vedtak = Boundary(A, "VEDTAK")
    for n, row in enumerate(_select(conn, _VEDTAK_COLS, "VEDTAK", since), start=1):
        loc = _location("VEDTAK", row["VEDTAK_ID"], n)
        _dependant(vedtak, row, loc, owner_problem, _vedtak_values)
    for row, loc in vedtak.validated(schemas.ArenaVedtak):
        out.state_benefits.append(
            StateBenefit(
                A,
                str(row["PERSON_ID"]),
                loc,
                row["SAKSKODE"],
                row["FRA_DATO"],
                row["TIL_DATO"],
                status=row["VEDTAKSTATUS"],
                daily_rate=row["DAGSATS"],
                justification=row["BEGRUNNELSE"],
                changed_at=row["MOD_DATO"],
            )
        )
    vedtak.finish(out)

    tiltak = Boundary(A, "TILTAKDELTAKER")
    for n, row in enumerate(_select(conn, _TILTAK_COLS, "TILTAKDELTAKER", since), start=1):
        loc = _location("TILTAKDELTAKER", row["DELTAKER_ID"], n)
        _dependant(tiltak, row, loc, owner_problem, _tiltak_values)
    for row, loc in tiltak.validated(schemas.ArenaTiltak):
        out.measures.append(
            Measure(
                A,
                str(row["PERSON_ID"]),
                loc,
                row["TILTAKSKODE"],
                row["DELTAKERSTATUS"],
                row["FRA_DATO"],
                row["TIL_DATO"],
                row["ARRANGOR"],
                changed_at=row["MOD_DATO"],
            )
        )
    tiltak.finish(out)
    return out


def _raw(row: dict[str, Any]) -> str:
    return "|".join("" if v is None else str(v) for v in row.values())


def _person_candidate(b: Boundary, row: dict[str, Any], n: int, person_ids: dict[str, int]) -> None:
    loc = _location("PERSON", row["PERSON_ID"], n)
    try:
        person_id = parse_int(row["PERSON_ID"], "PERSON_ID")
        person_ids[loc] = person_id
        text = {k: as_text(row[k], k) for k in _PERSON_TEXT}
        fnr = blank_to_none(text["FODSELSNR"])
        parsed = {
            **row,
            **text,
            "PERSON_ID": person_id,
            "FODSELSNR": normalise(fnr) if fnr else None,
            "MELLOMNAVN": blank_to_none(text["MELLOMNAVN"]),
            "FODSELSDATO": parse_date(row["FODSELSDATO"], "FODSELSDATO"),
            "DISKRESJONSKODE": blank_to_none(text["DISKRESJONSKODE"]),
            "DOEDSDATO": parse_date(row["DOEDSDATO"], "DOEDSDATO"),
            "REG_DATO": parse_timestamp(row["REG_DATO"], "REG_DATO"),
            "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
        }
        check_fits(parsed, limits.ARENA_PERSON)
    except BadValue as exc:
        b.reject(loc, str(exc), _raw(row))
        return
    b.candidate(parsed, loc, _raw(row))


def _person_record(row: dict[str, Any], loc: str) -> PersonRecord:
    return PersonRecord(
        register=A,
        source_key=str(row["PERSON_ID"]),
        location=loc,
        ident=row["FODSELSNR"],
        surname=row["ETTERNAVN"],
        given_names=row["FORNAVN"],
        middle_name=row["MELLOMNAVN"],
        birth_date=row["FODSELSDATO"],
        death_date=row["DOEDSDATO"],
        address=blank_to_none(row["ADRESSELINJE"]),
        postnr=row["POSTNR"],
        poststed=blank_to_none(row["POSTSTED"]),
        kommunenr=row["KOMMUNENR"],
        phone=blank_to_none(row["TELEFON"]),
        protection=_PROTECTION.get(row["DISKRESJONSKODE"] or ""),
        skjermet=row["ER_EGEN_ANSATT"] == "J",
        nav_office=blank_to_none(row["NAV_KONTOR"]),
        veileder=blank_to_none(row["VEILEDER_IDENT"]),
        formidlingsgruppe=row["FORMIDLINGSGRUPPEKODE"],
        kvalifiseringsgruppe=row["KVALIFISERINGSGRUPPEKODE"],
        registered_at=row["REG_DATO"],
        changed_at=row["MOD_DATO"],
    )


def _dependant(
    b: Boundary,
    row: dict[str, Any],
    loc: str,
    owner_problem: Callable[[int | None], str | None],
    values: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    try:
        pid = row["PERSON_ID"]
        problem = owner_problem(None if pid is None else parse_int(pid, "PERSON_ID"))
        if problem:
            b.reject(loc, problem, _raw(row))
            return
        parsed = values(row)
    except BadValue as exc:
        b.reject(loc, str(exc), _raw(row))
        return
    b.candidate(parsed, loc, _raw(row))


def _strip(row: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: blank_to_none(as_text(row[k], k)) for k in keys}


def _hist_values(row: dict[str, Any]) -> dict[str, Any]:
    values = {
        "PERSON_ID": parse_int(row["PERSON_ID"], "PERSON_ID"),
        "FODSELSNR": normalise(as_text(row["FODSELSNR"], "FODSELSNR") or ""),
        "GYLDIG_FRA": parse_date(row["GYLDIG_FRA"], "GYLDIG_FRA"),
        "GYLDIG_TIL": parse_date(row["GYLDIG_TIL"], "GYLDIG_TIL"),
    }
    check_fits(values, limits.ARENA_IDENT_HIST)
    return values


def _vedtak_values(row: dict[str, Any]) -> dict[str, Any]:
    values = {
        **_strip(row, ("SAKSKODE", "VEDTAKSTATUS", "BEGRUNNELSE")),
        "VEDTAK_ID": parse_int(row["VEDTAK_ID"], "VEDTAK_ID"),
        "PERSON_ID": parse_int(row["PERSON_ID"], "PERSON_ID"),
        "FRA_DATO": parse_date(row["FRA_DATO"], "FRA_DATO"),
        "TIL_DATO": parse_date(row["TIL_DATO"], "TIL_DATO"),
        "DAGSATS": parse_decimal(row["DAGSATS"], "DAGSATS"),
        "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
    }
    check_fits(values, limits.ARENA_VEDTAK)
    return values


def _tiltak_values(row: dict[str, Any]) -> dict[str, Any]:
    values = {
        **_strip(row, ("TILTAKSKODE", "DELTAKERSTATUS", "ARRANGOR")),
        "DELTAKER_ID": parse_int(row["DELTAKER_ID"], "DELTAKER_ID"),
        "PERSON_ID": parse_int(row["PERSON_ID"], "PERSON_ID"),
        "FRA_DATO": parse_date(row["FRA_DATO"], "FRA_DATO"),
        "TIL_DATO": parse_date(row["TIL_DATO"], "TIL_DATO"),
        "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
    }
    check_fits(values, limits.ARENA_TILTAK)
    return values
