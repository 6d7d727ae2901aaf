"""Regression tests for the bytes that crashed the adapters or failed whole nights (issue 12):
a bare CR in a Sosio line, a deeply nested Flyt line, a non-integer ``PERSON_ID`` and a BLOB
``FODSELSNR`` in Arena, and one over-long value (a surname, a number, a caseworker id) that failed
the night on PostgreSQL. Each is now a quarantined record with a reason that names the field and
the limit, never the value, and the night around it publishes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters import RefusedSource, read_arena, read_drop, read_flyt, read_sosio
from adapters import limits as store_limits
from adapters.boundary import BadValue, parse_int
from adapters.drop import fingerprint
from adapters.sosio import HEADER
from personkort.ident import make_ident
from personkort.nightly import run_night
from personkort.records import Extract, Register
from personkort.store import models as m
from personkort.store import open_engine

LONG_SURNAME = "Stor" + "x" * 97  # 101 characters: source_record.surname holds 100
LONG_NUMBER = "123456789012345678"  # 18 digits: source_record.ident holds 16
LONG_CASEWORKER = "k" * 41  # municipal_service.caseworker holds 40


def _conserved(extract: Extract) -> None:
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined, c


def _reasons(extract: Extract) -> dict[str, str]:
    return {q.location: q.reason for q in extract.quarantine}


def _ident(n: int) -> str:
    born = dt.date(1970, 1, 1) + dt.timedelta(days=97 * n)
    for individual in range(100 + n, 500):
        number = make_ident(born, individual)
        if number:
            return number
    raise AssertionError("no identity number")


def _sosio_line(key: str, **values: str) -> str:
    row = {
        "klientnr": key,
        "fodselsnummer": _ident(int(key) % 50),
        "etternavn": "Berg",
        "fornavn": "Kari",
        "adresse": "Storgata 1",
        "postnr": "0150",
        "poststed": "OSLO",
        "tjeneste": "Økonomisk sosialhjelp",
        "vedtak_fra": "01.02.2026",
        "vedtak_til": "",
        "belop_mnd": "7 414,26",
        "saksbehandler": "tm12",
        "merknad": "Supplerende",
        **values,
    }
    return ";".join(row[c] for c in HEADER.split(";"))


def _write_sosio(path: Path, lines: list[str]) -> Path:
    path.write_bytes("\r\n".join([HEADER, *lines, ""]).encode("cp1252"))
    return path


def _flyt_line(
    klient: str, kommune: str, *, person: dict[str, Any] | None = None, **top: Any
) -> str:
    obj = {
        "klientId": klient,
        "kommunenr": kommune,
        "person": {
            "ident": _ident(7),
            "identType": "FNR",
            "fornavn": "Ola",
            "mellomnavn": None,
            "etternavn": "Nordmann",
            "fodselsdato": "1970-01-08",
            "adresse": {"gate": "Ringveien 1", "postnr": "0661", "poststed": "OSLO"},
            "telefon": "+47 91560650",
            **(person or {}),
        },
        "tjenester": [
            {
                "kode": "OKSOS",
                "fra": "2026-06-04",
                "til": None,
                "belopMnd": 8482.45,
                "saksbehandler": "k6150",
                "begrunnelse": "Supplerende",
            }
        ],
        "sistEndret": "2026-11-20T01:30:00+01:00",
        **top,
    }
    return json.dumps(obj)  # non-ASCII as \u escapes: a lone surrogate stays valid UTF-8


def _arena_copy(sample: Path, tmp_path: Path) -> Path:
    target = tmp_path / "arena.sqlite"
    shutil.copyfile(sample / "night1" / "arena" / "arena.sqlite", target)
    target.chmod(0o644)
    return target


def _sql(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(statement, params)
    db.close()


def _first(path: Path, query: str) -> Any:
    with sqlite3.connect(path) as db:
        value = db.execute(query).fetchone()[0]
    db.close()
    return value


# ---- the crash classes ----------------------------------------------------------------------


def test_a_bare_cr_inside_a_sosio_line_quarantines_that_line(tmp_path: Path) -> None:
    path = _write_sosio(
        tmp_path / "sosio_0301_20261120.csv",
        [_sosio_line("1"), _sosio_line("2", merknad="Delt\rlinje"), _sosio_line("3")],
    )
    extract = read_sosio(path)  # was: _csv.Error: new-line character seen in unquoted field
    _conserved(extract)
    reasons = _reasons(extract)
    assert list(reasons) == ["sosio_0301:line:3"]
    assert "not a CSV row" in reasons["sosio_0301:line:3"]
    assert [p.source_key for p in extract.persons] == ["sosio:0301:1", "sosio:0301:3"]


def test_a_deeply_nested_flyt_line_is_quarantined(tmp_path: Path) -> None:
    nested = '{"klientId": "K-2", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge_number = '{"klientId": "K-3", "kommunenr": "0301", "n": ' + "9" * 5_000 + "}"
    path = tmp_path / "flyt_0301_20261120.jsonl"
    lines = [_flyt_line("K-1", "0301"), nested, huge_number, _flyt_line("K-4", "0301")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    extract = read_flyt(path)  # was: RecursionError (and ValueError for the long number)
    _conserved(extract)
    reasons = _reasons(extract)
    assert "nested too deeply" in reasons["flyt_0301:line:2"]
    assert "number too long" in reasons["flyt_0301:line:3"]
    assert [p.source_key for p in extract.persons] == ["flyt:0301:K-1", "flyt:0301:K-4"]


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("VEDTAK", "VEDTAK_ID"),
        ("TILTAKDELTAKER", "DELTAKER_ID"),
        ("PERSON_IDENT_HIST", "rowid"),
    ],
)
def test_a_non_integer_person_id_in_an_arena_child_table_is_quarantined(
    sample: Path, tmp_path: Path, table: str, key: str
) -> None:
    db = _arena_copy(sample, tmp_path)
    before = read_arena(f"sqlite:///{db}")
    row = _first(db, f"SELECT MIN({key}) FROM {table}")
    _sql(db, f"UPDATE {table} SET PERSON_ID = 'P-17 x' WHERE {key} = ?", row)
    extract = read_arena(f"sqlite:///{db}")  # was: ValueError: invalid literal for int()
    _conserved(extract)
    bad = [q for q in extract.quarantine if "PERSON_ID is not an integer" in q.reason]
    assert len(bad) == 1
    assert bad[0].location.startswith(f"{table}:")
    assert "P-17" not in bad[0].location + bad[0].reason
    assert len(extract.quarantine) == len(before.quarantine) + 1


def test_a_blob_fodselsnr_quarantines_the_person_and_its_dependants(
    sample: Path, tmp_path: Path
) -> None:
    db = _arena_copy(sample, tmp_path)
    person = _first(db, "SELECT PERSON_ID FROM VEDTAK ORDER BY VEDTAK_ID LIMIT 1")
    _sql(db, "UPDATE PERSON SET FODSELSNR = ? WHERE PERSON_ID = ?", b"\x0112345678901", person)
    extract = read_arena(f"sqlite:///{db}")  # was: TypeError from normalise(bytes)
    _conserved(extract)
    reasons = _reasons(extract)
    assert "FODSELSNR is a BLOB, not text" in reasons[f"PERSON:{person}"]
    assert str(person) not in {p.source_key for p in extract.persons}
    assert any(
        r == f"its person PERSON:{person} is quarantined" and loc.startswith("VEDTAK:")
        for loc, r in reasons.items()
    )


@pytest.mark.parametrize("column", ["ETTERNAVN", "DISKRESJONSKODE"])  # a name, a code
def test_arena_text_that_is_not_utf8_is_quarantined_not_raised(
    sample: Path, tmp_path: Path, column: str
) -> None:
    db = _arena_copy(sample, tmp_path)
    person = _first(db, "SELECT MIN(PERSON_ID) FROM PERSON")
    _sql(db, f"UPDATE PERSON SET {column} = CAST(? AS TEXT) WHERE PERSON_ID = ?", b"\xffB", person)
    extract = read_arena(f"sqlite:///{db}")  # was: OperationalError: Could not decode to UTF-8
    _conserved(extract)
    assert f"{column}: contains a lone surrogate" in _reasons(extract)[f"PERSON:{person}"]
    unchanged = read_arena(f"sqlite:///{sample / 'night1' / 'arena' / 'arena.sqlite'}")
    assert len(extract.persons) == len(unchanged.persons) - 1
    assert all(p.source_key != str(person) for p in extract.persons)


def test_an_infinite_dagsats_is_quarantined(sample: Path, tmp_path: Path) -> None:
    db = _arena_copy(sample, tmp_path)
    vedtak = _first(db, "SELECT MIN(VEDTAK_ID) FROM VEDTAK")
    _sql(db, "UPDATE VEDTAK SET DAGSATS = 9e999 WHERE VEDTAK_ID = ?", vedtak)  # infinity
    second = _first(db, "SELECT MIN(VEDTAK_ID) FROM VEDTAK WHERE VEDTAK_ID > 0 + " + str(vedtak))
    _sql(db, "UPDATE VEDTAK SET DAGSATS = 1e10 WHERE VEDTAK_ID = ?", second)
    extract = read_arena(f"sqlite:///{db}")
    _conserved(extract)
    reasons = _reasons(extract)
    assert "bad amount in DAGSATS" in reasons[f"VEDTAK:{vedtak}"]
    assert "DAGSATS: more than 10 digits" in reasons[f"VEDTAK:{second}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7),
        ("12", 12),
        (3.0, 3),
        (Decimal("4"), 4),
        (1.5, None),
        ("1e3", None),
        (b"1", None),
        (True, None),
        ("x" * 30, None),
        (2**64, None),
        (float("nan"), None),
    ],
)
def test_a_key_is_an_integer_or_bad(value: object, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(BadValue, match="PERSON_ID"):
            parse_int(value, "PERSON_ID")
    else:
        assert parse_int(value, "PERSON_ID") == expected


def test_a_file_that_is_no_arena_database_is_refused_and_the_drop_still_read(
    sample: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "arena.sqlite"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(RefusedSource, match="could not be read"):
        read_arena(f"sqlite:///{garbage}")
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop)
    (drop / "arena" / "arena.sqlite").chmod(0o644)
    (drop / "arena" / "arena.sqlite").write_bytes(b"not a database at all" * 100)
    extract = read_drop(drop)
    assert [r.register for r in extract.refusals] == [Register.ARENA]
    assert any(p.register is Register.KOMMUNE for p in extract.persons)


# ---- over-long values: quarantined by the adapter, with the limit from the model ------------


def test_the_limits_are_the_models_column_sizes() -> None:
    columns = m.SourceRecord.__table__.c
    assert store_limits.SOSIO["etternavn"].length == columns.surname.type.length
    assert store_limits.SOSIO["fodselsnummer"].length == columns.ident.type.length
    caseworker = m.MunicipalServiceRow.__table__.c.caseworker.type.length
    assert store_limits.FLYT_SERVICE["saksbehandler"].length == caseworker
    assert store_limits.ARENA_VEDTAK["DAGSATS"].precision == 12
    room = columns.source_key.type.length - len("sosio:0301:")
    assert store_limits.SOSIO["klientnr"].length == room


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("etternavn", LONG_SURNAME, "etternavn: 101 characters, source_record.surname holds"),
        ("fodselsnummer", LONG_NUMBER, "fodselsnummer: 18 characters, source_record.ident holds"),
        ("saksbehandler", LONG_CASEWORKER, "saksbehandler: 41 characters, municipal_service."),
        ("klientnr", "9" * 60, "klientnr: 60 characters"),
        ("belop_mnd", "1" * 13 + ",00", "belop_mnd: more than 12 digits"),
        ("fornavn", "Ka\x00ri", "fornavn: contains a NUL character"),
    ],
)
def test_sosio_quarantines_a_value_that_does_not_fit_without_quoting_it(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    path = _write_sosio(
        tmp_path / "sosio_0301_20261120.csv", [_sosio_line("1"), _sosio_line("2", **{field: value})]
    )
    extract = read_sosio(path)
    _conserved(extract)
    (q,) = extract.quarantine
    assert q.location == "sosio_0301:line:3"
    assert reason in q.reason
    assert value not in q.reason and "1234567890" not in q.reason
    assert len(extract.persons) == 1


@pytest.mark.parametrize(
    ("person", "top", "reason"),
    [
        ({"etternavn": LONG_SURNAME}, {}, "etternavn: 101 characters"),
        ({"ident": LONG_NUMBER}, {}, "ident: 18 characters"),
        ({"fornavn": "Ola\ud800"}, {}, "fornavn: contains a lone surrogate"),
        ({}, {"klientId": "K" * 60}, "klientId: 60 characters"),
    ],
)
def test_flyt_quarantines_a_value_that_does_not_fit(
    tmp_path: Path, person: dict[str, str], top: dict[str, str], reason: str
) -> None:
    path = tmp_path / "flyt_0301_20261120.jsonl"
    lines = [_flyt_line("K-1", "0301"), _flyt_line("K-2", "0301", person=person, **top)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    extract = read_flyt(path)
    _conserved(extract)
    (q,) = extract.quarantine
    assert reason in q.reason
    assert q.raw.encode("utf-8")  # the raw line is storable text
    assert [p.source_key for p in extract.persons] == ["flyt:0301:K-1"]


# ---- through a real night, on SQLite and PostgreSQL -----------------------------------------


def _hostile_drop(sample: Path, tmp_path: Path) -> Path:
    """Night 1 with one over-long value of each kind in each register that can hold one."""
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop)
    for path in drop.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    sosio = drop / "kommune" / "sosio_5001_20261120.csv"
    extra = [
        _sosio_line("990001", etternavn=LONG_SURNAME),
        _sosio_line("990002", fodselsnummer=LONG_NUMBER),
        _sosio_line("990003", saksbehandler=LONG_CASEWORKER),
    ]
    sosio.write_bytes(sosio.read_bytes() + "\r\n".join([*extra, ""]).encode("cp1252"))
    flyt = drop / "kommune" / "flyt_0301_20261120.jsonl"
    extra_flyt = [
        _flyt_line("K-X1", "0301", person={"etternavn": LONG_SURNAME}),
        _flyt_line("K-X2", "0301", person={"ident": LONG_NUMBER}),
    ]
    flyt.write_text(flyt.read_text(encoding="utf-8") + "\n".join(extra_flyt) + "\n", "utf-8")
    arena = drop / "arena" / "arena.sqlite"
    people = [r for (r,) in sqlite3.connect(arena).execute("SELECT PERSON_ID FROM PERSON")]
    _sql(arena, "UPDATE PERSON SET ETTERNAVN = ? WHERE PERSON_ID = ?", LONG_SURNAME, people[-1])
    _sql(arena, "UPDATE PERSON SET VEILEDER_IDENT = ? WHERE PERSON_ID = ?", "V" * 17, people[-2])
    return drop


def test_over_long_values_are_quarantined_and_the_night_publishes(
    sample: Path, tmp_path: Path, store_url: str
) -> None:
    drop = _hostile_drop(sample, tmp_path)
    engine = open_engine(store_url)
    extract = read_drop(drop)
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message  # was: DataError on PostgreSQL
    with engine.connect() as conn:
        rows = conn.execute(sa.select(m.QuarantineRow.location, m.QuarantineRow.reason)).all()
        error = conn.scalar(sa.select(m.Night.error).where(m.Night.id == outcome.night))
    assert error is None
    reasons = dict(rows)
    expected = {
        "sosio_5001:line:20": "etternavn: 101 characters, source_record.surname holds at most 100",
        "sosio_5001:line:21": "fodselsnummer: 18 characters, source_record.ident holds at most 16",
        "sosio_5001:line:22": "saksbehandler: 41 characters, municipal_service.caseworker holds",
        "flyt_0301:line:47": "etternavn: 101 characters",
        "flyt_0301:line:48": "ident: 18 characters",
    }
    for location, reason in expected.items():
        assert reason in reasons[location], (location, reasons.get(location))
    arena = [r for r in reasons.values() if "ETTERNAVN: 101" in r or "VEILEDER_IDENT: 17" in r]
    assert len(arena) == 2
    for reason in reasons.values():
        assert LONG_SURNAME not in reason and LONG_NUMBER not in reason
        assert LONG_CASEWORKER not in reason


def test_a_failed_nights_error_text_carries_no_personal_data(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a night stores as its error reaches stewards (``GET /api/v1/steward/nights``): a
    driver error's statement and parameters (identity numbers, names) must not be in it."""
    import personkort.nightly as nightly

    ident = _ident(3)

    def fails(*args: object, **kwargs: object) -> None:
        raise sa.exc.DataError(
            "INSERT INTO source_record (ident, surname) VALUES (%(ident)s, %(surname)s)",
            {"ident": ident, "surname": "Nordmann"},
            Exception(f"value too long for type character varying(100)\nDETAIL: {ident}"),
        )

    monkeypatch.setattr(nightly, "write_night", fails)
    engine = open_engine(store_url)
    drop = sample / "night1"
    with pytest.raises(sa.exc.DataError):
        run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with engine.connect() as conn:
        error = conn.scalar(sa.select(m.Night.error).order_by(m.Night.id.desc()).limit(1))
    assert error is not None and "DataError" in error
    assert ident not in error and "Nordmann" not in error


# ---- an adapter's own bug: the source is refused, named, and nothing personal is said --------


def _crash_with_a_number(path: Path) -> Extract:
    raise KeyError(f"{make_ident(dt.date(1980, 5, 17), 123)} Kari Nordmann")


def test_an_adapter_that_crashes_refuses_its_source_and_the_night_stops_at_the_gate(
    sample: Path,
    tmp_path: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    number = make_ident(dt.date(1980, 5, 17), 123)
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop)
    monkeypatch.setattr("adapters.drop.read_sosio", _crash_with_a_number)
    monkeypatch.setattr(
        "adapters.drop.read_snapshot", lambda path, known=(): _crash_with_a_number(path)
    )
    extract = read_drop(drop)  # was: the KeyError, and no night recorded
    refused = [r for r in extract.refusals]
    assert [r.register for r in refused] == [Register.KOMMUNE] * len(refused) and refused
    assert all("KeyError at test_adapters_crashes.py:" in r.reason for r in refused)
    assert extract.feed_refusal is not None and "KeyError" in extract.feed_refusal.reason
    assert any(p.register is Register.ARENA for p in extract.persons)  # the rest still read
    outcome = run_night(
        open_engine(store_url), extract, drop_dir=str(drop), fingerprint=fingerprint(drop)
    )
    assert outcome.status == "refused"
    assert "ble avvist: the adapter failed unexpectedly (KeyError" in outcome.message
    said = " ".join([outcome.message, caplog.text, *(r.reason for r in refused)])
    assert number not in said and "Nordmann" not in said
    assert "the kommune adapter failed on sosio" in caplog.text
