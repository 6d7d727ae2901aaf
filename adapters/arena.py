"""Arena-style employment register, read through SQLAlchemy from any database URL.

Columns are upper case and unquoted in the SQL, so the same statements read the SQLite sample,
PostgreSQL (which folds them to lower case) and Oracle. Dates may arrive as text or as driver
dates. ``since`` extracts incrementally: only rows whose ``MOD_DATO`` is later.

Dependants (decisions, measures, identity history) of a person row that does not exist are
orphans; dependants of a person row quarantined in the same extract are quarantined with it, so
that nothing hangs off a person the store never saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from adapters import schemas
from adapters.boundary import (
    BadValue,
    Boundary,
    blank_to_none,
    parse_date,
    parse_decimal,
    parse_timestamp,
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


def read_arena(url: str | sa.Engine, *, since: dt.datetime | None = None) -> Extract:
    """Read the Arena register at ``url``; with ``since``, only rows changed after it."""
    engine = sa.create_engine(url) if isinstance(url, str) else url
    try:
        with engine.connect() as conn:
            return _read(conn, since)
    finally:
        if isinstance(url, str):
            engine.dispose()


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
    existing = {int(r[0]) for r in conn.execute(sa.text("SELECT PERSON_ID FROM PERSON"))}

    people = Boundary(A, "PERSON")
    for row in _select(conn, _PERSON_COLS, "PERSON", since):
        _person_candidate(people, row)
    for row, loc in people.validated(schemas.ArenaPerson):
        out.persons.append(_person_record(row, loc))
        people.check_ident(loc, row["FODSELSNR"], "FODSELSNR")
        people.check_kommune(loc, row["KOMMUNENR"], "KOMMUNENR")
    quarantined = {int(q.location.split(":")[1]) for q in people.quarantine}
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
    ordinal: dict[int, int] = {}
    for row in hist_rows:
        pid = row["PERSON_ID"]
        if since is not None and pid not in read_ids:
            continue  # incremental: history travels with its changed person row
        ordinal[pid] = ordinal.get(pid, 0) + 1
        loc = f"PERSON_IDENT_HIST:{pid}#{ordinal[pid]}"
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
    for row in _select(conn, _VEDTAK_COLS, "VEDTAK", since):
        _dependant(vedtak, row, f"VEDTAK:{row['VEDTAK_ID']}", owner_problem, _vedtak_values)
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
    for row in _select(conn, _TILTAK_COLS, "TILTAKDELTAKER", since):
        loc = f"TILTAKDELTAKER:{row['DELTAKER_ID']}"
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


def _person_candidate(b: Boundary, row: dict[str, Any]) -> None:
    loc = f"PERSON:{row['PERSON_ID']}"
    try:
        fnr = blank_to_none(row["FODSELSNR"])
        parsed = {
            **{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()},
            "PERSON_ID": int(row["PERSON_ID"]),
            "FODSELSNR": normalise(fnr) if fnr else None,
            "MELLOMNAVN": blank_to_none(row["MELLOMNAVN"]),
            "FODSELSDATO": parse_date(row["FODSELSDATO"], "FODSELSDATO"),
            "DISKRESJONSKODE": blank_to_none(row["DISKRESJONSKODE"]),
            "DOEDSDATO": parse_date(row["DOEDSDATO"], "DOEDSDATO"),
            "REG_DATO": parse_timestamp(row["REG_DATO"], "REG_DATO"),
            "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
        }
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
    pid = row["PERSON_ID"]
    problem = owner_problem(None if pid is None else int(pid))
    if problem:
        b.reject(loc, problem, _raw(row))
        return
    try:
        parsed = values(row)
    except BadValue as exc:
        b.reject(loc, str(exc), _raw(row))
        return
    b.candidate(parsed, loc, _raw(row))


def _strip(row: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: blank_to_none(row[k]) if isinstance(row[k], str) else row[k] for k in keys}


def _hist_values(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "PERSON_ID": int(row["PERSON_ID"]),
        "FODSELSNR": normalise(row["FODSELSNR"] or ""),
        "GYLDIG_FRA": parse_date(row["GYLDIG_FRA"], "GYLDIG_FRA"),
        "GYLDIG_TIL": parse_date(row["GYLDIG_TIL"], "GYLDIG_TIL"),
    }


def _vedtak_values(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **_strip(row, ("SAKSKODE", "VEDTAKSTATUS", "BEGRUNNELSE")),
        "VEDTAK_ID": int(row["VEDTAK_ID"]),
        "PERSON_ID": int(row["PERSON_ID"]),
        "FRA_DATO": parse_date(row["FRA_DATO"], "FRA_DATO"),
        "TIL_DATO": parse_date(row["TIL_DATO"], "TIL_DATO"),
        "DAGSATS": parse_decimal(row["DAGSATS"], "DAGSATS"),
        "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
    }


def _tiltak_values(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **_strip(row, ("TILTAKSKODE", "DELTAKERSTATUS", "ARRANGOR")),
        "DELTAKER_ID": int(row["DELTAKER_ID"]),
        "PERSON_ID": int(row["PERSON_ID"]),
        "FRA_DATO": parse_date(row["FRA_DATO"], "FRA_DATO"),
        "TIL_DATO": parse_date(row["TIL_DATO"], "TIL_DATO"),
        "MOD_DATO": parse_timestamp(row["MOD_DATO"], "MOD_DATO"),
    }
