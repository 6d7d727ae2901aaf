"""Property-based fuzzing of every adapter (hypothesis): arbitrary bytes, and structured mutations
of the sample night's files (a field replaced by any text or bytes, bytes spliced in, lines cut,
duplicated or dropped; for Arena any SQLite value in any cell, a table or column gone).

Whatever the input, an adapter either refuses the whole source (``RefusedSource``, its documented
answer) or returns an extract where, per source, read = accepted + quarantined, the accepted
records are exactly what the extract holds, and everything the store will be given fits it
(``adapters.limits``): no exception escapes. ``bench/fuzz_adapters.py`` runs the same checks for
longer; the strategies and checks live here so that both run the same thing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import RefusedSource, read_arena, read_flyt, read_infotrygd, read_sosio
from adapters import limits as store_limits
from personkort.records import Extract, PersonRecord, Register
from personkort.store import models as m
from tests.conftest import SAMPLE

NIGHT = SAMPLE / "night1"
SOSIO = NIGHT / "kommune" / "sosio_1103_20261120.csv"
FLYT = NIGHT / "kommune" / "flyt_0301_20261120.jsonl"
INFOTRYGD = NIGHT / "infotrygd" / "infotrygd_20261120.dat"
ARENA = NIGHT / "arena" / "arena.sqlite"


def _arena_columns() -> dict[str, list[str]]:
    db = sqlite3.connect(f"file:{ARENA}?mode=ro", uri=True)
    try:
        tables = ("PERSON", "PERSON_IDENT_HIST", "VEDTAK", "TILTAKDELTAKER")
        return {t: [row[1] for row in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()


ARENA_TABLES = _arena_columns()

# The suite's fuzz is short (per adapter: 50 arbitrary files, 150 mutated samples); the bench
# runs the same for as long as asked.
QUICK = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
MUTATED = settings(QUICK, max_examples=150)


# ---- checks ---------------------------------------------------------------------------------


def storable(text: str) -> bool:
    return store_limits.text_problem(text) is None


def check_extract(extract: Extract, accepted: Callable[[Extract], int]) -> None:
    """Conservation per source, the accepted records all there, and every value storable."""
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined, c
    assert sum(c.quarantined for c in extract.counts) == len(extract.quarantine)
    assert sum(c.accepted for c in extract.counts) == accepted(extract)
    location = store_limits.LOCATION.length or 0
    for q in extract.quarantine:
        assert len(q.location) <= location and storable(q.location), q.location
        assert storable(q.reason) and storable(q.raw), q.location
    for f in extract.findings:
        assert len(f.location) <= location and storable(f.detail)
    for p in extract.persons:
        check_person(p)
    for group, limits in (
        (extract.municipal_services, _SERVICE_LIMITS),
        (extract.state_benefits, _BENEFIT_LIMITS),
        (extract.measures, _MEASURE_LIMITS),
        (extract.ident_history, _HISTORY_LIMITS),
    ):
        for record in group:
            row = {f.name: getattr(record, f.name) for f in fields(record)}
            problem = store_limits.problems(row, limits)
            assert problem is None, (record.location, problem)


def check_person(person: PersonRecord) -> None:
    row = {f.name: getattr(person, f.name) for f in fields(person)}
    assert store_limits.problems(row, _PERSON_LIMITS) is None, person.location
    assert len(person.register + ":" + person.source_key) <= _RECORD_KEY


_column = store_limits.column


def _limits() -> tuple[dict[str, store_limits.Limit], ...]:
    """What each accepted record's fields must fit: the columns the night writes them to."""
    person = {
        **store_limits.PERSON_TEXT,
        "location": _column(m.SourceRecord.location),
        "source_key": _column(m.SourceRecord.source_key),
    }
    service = {
        "location": _column(m.MunicipalServiceRow.location),
        "owner_kommune": _column(m.MunicipalServiceRow.owner_kommune),
        "caseworker": _column(m.MunicipalServiceRow.caseworker),
        "free_text": _column(m.MunicipalServiceRow.free_text),
        "monthly_amount": _column(m.MunicipalServiceRow.monthly_amount),
    }
    benefit = {
        "location": _column(m.StateBenefitRow.location),
        "code": _column(m.StateBenefitRow.code),
        "status": _column(m.StateBenefitRow.status),
        "daily_rate": _column(m.StateBenefitRow.daily_rate),
        "monthly_amount": _column(m.StateBenefitRow.monthly_amount),
        "diagnosis": _column(m.StateBenefitRow.diagnosis),
        "justification": _column(m.StateBenefitRow.justification),
    }
    measure = {
        "location": _column(m.MeasureRow.location),
        "code": _column(m.MeasureRow.code),
        "status": _column(m.MeasureRow.status),
        "organiser": _column(m.MeasureRow.organiser),
    }
    history = {
        "location": _column(m.IdentHistoryRow.location),
        "ident": _column(m.IdentHistoryRow.ident),
    }
    return person, service, benefit, measure, history


_PERSON_LIMITS, _SERVICE_LIMITS, _BENEFIT_LIMITS, _MEASURE_LIMITS, _HISTORY_LIMITS = _limits()
_RECORD_KEY = _column(m.SourceRecord.record_key).length or 0


def _accepted_municipal(extract: Extract) -> int:
    return len(extract.municipal_services)


def _accepted_flyt(extract: Extract) -> int:
    return len(extract.persons)


def _accepted_infotrygd(extract: Extract) -> int:
    return len(extract.persons) + len(extract.state_benefits) + len(extract.municipal_services)


def _accepted_arena(extract: Extract) -> int:
    return (
        len(extract.persons)
        + len(extract.ident_history)
        + len(extract.state_benefits)
        + len(extract.measures)
    )


def _lines_read(data: bytes, *, header: bool) -> int:
    """The records a line-based file offers: its non-blank lines (after the header)."""
    lines = data.split(b"\n")[1:] if header else data.split(b"\n")
    return sum(1 for line in lines if line.rstrip(b"\r").strip())


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pk-fuzz-") as folder:
        yield Path(folder)


def check_sosio(data: bytes) -> None:
    with _scratch() as folder:
        path = folder / "sosio_1103_20261120.csv"
        path.write_bytes(data)
        extract = read_sosio(path)
    check_extract(extract, _accepted_municipal)
    assert sum(c.read for c in extract.counts) == _lines_read(data, header=True)
    assert all(p.register is Register.KOMMUNE for p in extract.persons)


def check_flyt(data: bytes) -> None:
    with _scratch() as folder:
        path = folder / "flyt_0301_20261120.jsonl"
        path.write_bytes(data)
        extract = read_flyt(path)
    check_extract(extract, _accepted_flyt)
    assert sum(c.read for c in extract.counts) == _lines_read(data, header=False)


def check_infotrygd(data: bytes) -> bool:
    """True if the file was read, False if refused whole (its documented answer)."""
    with _scratch() as folder:
        path = folder / "infotrygd_20261120.dat"
        path.write_bytes(data)
        try:
            extract = read_infotrygd(path)
        except RefusedSource as exc:
            assert storable(exc.reason)
            return False
    check_extract(extract, _accepted_infotrygd)
    return True


def check_arena_file(path: Path) -> bool:
    try:
        extract = read_arena(f"sqlite:///{path}")
    except RefusedSource as exc:
        assert storable(exc.reason) and exc.register is Register.ARENA
        return False
    check_extract(extract, _accepted_arena)
    return True


def check_arena_bytes(data: bytes) -> bool:
    with _scratch() as folder:
        path = folder / "arena.sqlite"
        path.write_bytes(data)
        return check_arena_file(path)


# ---- strategies -----------------------------------------------------------------------------

_ODD_TEXT = st.sampled_from(
    ["", " ", "\r", "\n", "\x00", ";", '"', "\ufeff", "\u00a0", "ÆØÅ", "9" * 18, "x" * 101]
)
_TEXT = st.one_of(st.text(max_size=60), _ODD_TEXT, st.text(min_size=90, max_size=300))
_BYTES = st.one_of(st.binary(max_size=60), _TEXT.map(lambda t: t.encode("utf-8", "replace")))


@st.composite
def line_mutations(draw: st.DrawFn, sample: bytes, separator: bytes) -> bytes:
    """The sample file with a few line-level edits: a field replaced, bytes spliced in, a line
    cut short, duplicated, dropped or replaced whole."""
    lines = sample.split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["field", "splice", "cut", "dup", "drop", "replace"]))
        line = lines[n] if lines else b""
        if op == "field" and separator in line:
            parts = line.split(separator)
            parts[draw(st.integers(0, len(parts) - 1))] = draw(_BYTES)
            lines[n] = separator.join(parts)
        elif op == "splice":
            at = draw(st.integers(0, len(line)))
            lines[n] = line[:at] + draw(_BYTES) + line[at:]
        elif op == "cut":
            lines[n] = line[: draw(st.integers(0, len(line)))]
        elif op == "dup":
            lines.insert(n, line)
        elif op == "drop" and lines:
            del lines[n]
        else:
            lines[n] = draw(_BYTES)
    return b"\n".join(lines)


_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_FLYT_PATHS = [
    ("klientId",),
    ("kommunenr",),
    ("sistEndret",),
    ("person",),
    ("person", "ident"),
    ("person", "identType"),
    ("person", "fornavn"),
    ("person", "mellomnavn"),
    ("person", "etternavn"),
    ("person", "fodselsdato"),
    ("person", "telefon"),
    ("person", "adresse"),
    ("person", "adresse", "gate"),
    ("person", "adresse", "postnr"),
    ("person", "adresse", "poststed"),
    ("tjenester",),
    ("tjenester", 0, "kode"),
    ("tjenester", 0, "fra"),
    ("tjenester", 0, "til"),
    ("tjenester", 0, "belopMnd"),
    ("tjenester", 0, "saksbehandler"),
    ("tjenester", 0, "begrunnelse"),
]


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        inside = isinstance(obj, dict) and step in obj
        inside |= isinstance(obj, list) and isinstance(step, int) and step < len(obj)
        if not inside:
            return
        obj = obj[step]
    if isinstance(obj, dict):
        obj[path[-1]] = value


@st.composite
def flyt_mutations(draw: st.DrawFn) -> bytes:
    """Sample Flyt lines with JSON values replaced by any JSON (huge numbers, NaN, nested lists,
    long text, lone surrogates as ``\\u`` escapes), then a few byte-level edits."""
    lines = FLYT.read_bytes().split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, len(lines) - 1))
        try:
            obj = json.loads(lines[n])
        except ValueError:
            continue
        _set(obj, draw(st.sampled_from(_FLYT_PATHS)), draw(_JSON))
        lines[n] = json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8", "replace")
    data = b"\n".join(lines)
    if draw(st.booleans()):
        data = draw(line_mutations(data, b'", "'))
    return data


def _trailer(body: list[bytes]) -> bytes:
    total = sum(
        int(line[36:47])
        for line in body
        if line[:1] == b"2" and len(line) >= 47 and line[36:47].isdigit()
    )
    return b"T" + f"{len(body):09d}{total:015d}".encode() + b" " * 95


@st.composite
def infotrygd_mutations(draw: st.DrawFn) -> bytes:
    """Records edited at a fixed-width position (the envelope's control total mostly made to
    match again, so the edits reach the record parser), or the envelope itself damaged."""
    lines = INFOTRYGD.read_bytes().rstrip(b"\n").split(b"\n")
    header, body = lines[0], lines[1:-1]
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(0, len(body) - 1))
        line = body[n]
        op = draw(st.sampled_from(["overwrite", "splice", "cut", "dup", "drop", "type"]))
        if op == "overwrite":
            at = draw(st.integers(0, len(line)))
            payload = draw(_BYTES)
            body[n] = line[:at] + payload + line[at + len(payload) :]
        elif op == "splice":
            at = draw(st.integers(0, len(line)))
            body[n] = line[:at] + draw(_BYTES) + line[at:]
        elif op == "cut":
            body[n] = line[: draw(st.integers(0, len(line)))]
        elif op == "dup":
            body.insert(n, line)
        elif op == "drop" and len(body) > 1:
            del body[n]
        else:
            body[n] = draw(st.sampled_from([b"1", b"2", b"3", b"T", b"H"])) + line[1:]
    body = b"\n".join(body).split(b"\n")  # as the reader will see the lines
    trailer = lines[-1] if draw(st.integers(0, 9)) == 0 else _trailer(body)
    return b"\n".join([header, *body, trailer]) + b"\n"


_SQLITE_VALUE = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT.filter(lambda t: storable(t)),
    st.binary(max_size=40),
    st.binary(min_size=1, max_size=20).map(lambda b: ("as_text", b)),  # text, not UTF-8
)


@st.composite
def arena_mutations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Cells set to any SQLite value (integers, floats with NaN and infinity, any text, BLOBs,
    text that is not UTF-8), rows deleted; now and then a column or a table gone."""
    edits: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 6))):
        table = draw(st.sampled_from(sorted(ARENA_TABLES)))
        if draw(st.integers(0, 7)) == 0:
            edits.append(("delete", table, draw(st.integers(0, 200))))
            continue
        column = draw(st.sampled_from(ARENA_TABLES[table]))
        edits.append(("set", table, column, draw(st.integers(0, 200)), draw(_SQLITE_VALUE)))
    if draw(st.integers(0, 19)) == 0:
        table = draw(st.sampled_from(sorted(ARENA_TABLES)))
        edits.append(("drop_column", table, draw(st.sampled_from(ARENA_TABLES[table]))))
    if draw(st.integers(0, 39)) == 0:
        edits.append(("drop_table", draw(st.sampled_from(sorted(ARENA_TABLES)))))
    return edits


def mutated_arena(folder: Path, edits: list[tuple[Any, ...]]) -> Path:
    """A copy of the sample Arena database with ``edits`` applied; an edit SQLite itself refuses
    (text in an ``INTEGER PRIMARY KEY``, NULL in a NOT NULL column) is left out."""
    path = folder / "arena.sqlite"
    shutil.copyfile(ARENA, path)
    path.chmod(0o644)
    db = sqlite3.connect(path)
    try:
        for edit in edits:
            kind, table = edit[0], edit[1]
            row = f"(SELECT rowid FROM {table} LIMIT 1 OFFSET ?)"
            try:
                if kind == "set":
                    _, _, column, n, value = edit
                    count = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] or 1
                    mark = "CAST(? AS TEXT)" if isinstance(value, tuple) else "?"
                    param = value[1] if isinstance(value, tuple) else value
                    db.execute(
                        f"UPDATE {table} SET {column} = {mark} WHERE rowid = {row}",
                        (param, n % count),
                    )
                elif kind == "delete":
                    db.execute(f"DELETE FROM {table} WHERE rowid = {row}", (edit[2],))
                elif kind == "drop_column":
                    db.execute(f"ALTER TABLE {table} DROP COLUMN {edit[2]}")
                else:
                    db.execute(f"DROP TABLE {table}")
            except (sqlite3.IntegrityError, sqlite3.OperationalError):
                continue
        db.commit()
    finally:
        db.close()
    return path


def check_arena_mutated(edits: list[tuple[Any, ...]]) -> bool:
    with _scratch() as folder:
        return check_arena_file(mutated_arena(folder, edits))


# Arbitrary bytes, some behind SQLite's own magic header so that SQLite reads further into them
ARENA_BYTES = st.one_of(
    st.binary(max_size=4000),
    st.binary(max_size=4000).map(lambda b: b"SQLite format 3\x00" + b),
)

# ---- the suite's short run ------------------------------------------------------------------

STRATEGIES: dict[str, list[tuple[st.SearchStrategy[Any], Callable[[Any], object]]]] = {
    "sosio": [
        (st.binary(max_size=2000), check_sosio),
        (line_mutations(SOSIO.read_bytes(), b";"), check_sosio),
    ],
    "flyt": [(st.binary(max_size=2000), check_flyt), (flyt_mutations(), check_flyt)],
    "infotrygd": [
        (st.binary(max_size=2000), check_infotrygd),
        (infotrygd_mutations(), check_infotrygd),
    ],
    "arena": [(ARENA_BYTES, check_arena_bytes), (arena_mutations(), check_arena_mutated)],
}


@QUICK
@given(st.binary(max_size=2000))
def test_sosio_survives_any_bytes(data: bytes) -> None:
    check_sosio(data)


@MUTATED
@given(line_mutations(SOSIO.read_bytes(), b";"))
def test_sosio_survives_mutated_samples(data: bytes) -> None:
    check_sosio(data)


@QUICK
@given(st.binary(max_size=2000))
def test_flyt_survives_any_bytes(data: bytes) -> None:
    check_flyt(data)


@MUTATED
@given(flyt_mutations())
def test_flyt_survives_mutated_samples(data: bytes) -> None:
    check_flyt(data)


@QUICK
@given(st.binary(max_size=2000))
def test_infotrygd_survives_any_bytes(data: bytes) -> None:
    check_infotrygd(data)


@MUTATED
@given(infotrygd_mutations())
def test_infotrygd_survives_mutated_samples(data: bytes) -> None:
    check_infotrygd(data)


@QUICK
@given(ARENA_BYTES)
def test_arena_survives_any_bytes(data: bytes) -> None:
    assert not check_arena_bytes(data)  # no such bytes are an Arena database: refused whole


@MUTATED
@given(arena_mutations())
def test_arena_survives_mutated_databases(edits: list[tuple[Any, ...]]) -> None:
    check_arena_mutated(edits)


def test_the_unmutated_samples_are_read_not_refused() -> None:
    """The mutations start from files the adapters read: a refusal in the fuzz is the edit's."""
    assert check_infotrygd(INFOTRYGD.read_bytes())
    with _scratch() as folder:
        assert check_arena_file(mutated_arena(folder, []))
