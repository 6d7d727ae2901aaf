"""The Folkeregister feed (shared/spec/folkeregister.md): the nightly snapshot and the day's events.

The snapshot is UTF-8 JSON Lines, one registered person per line; the events come as inbox files
of the same shape or as the API's JSON array. Both pass the same boundary as the registers: a
line or event that cannot be read is quarantined with its location and a reason that never
quotes a number, everything else becomes the typed records of ``personkort.feed.records``, and
read = accepted + quarantined, always. Python checks what JSON needs (types, presence, dates,
control digits); pandera checks the codes and shapes over the whole source at once (the
snapshot in chunks of lines, in file order).

The snapshot refuses itself whole (``RefusedSource``) only when it cannot be read as text: a
file that cannot be opened, or bytes that are not UTF-8, which says the transfer is broken and
that no line of it can be trusted. The events are read line by line whatever happens to one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from sys import intern
from typing import Any
from zoneinfo import ZoneInfo

from adapters import limits, schemas
from adapters.boundary import (
    BadValue,
    Boundary,
    RefusedSource,
    check_fits,
    parse_date,
    parse_timestamp,
    schema_failures,
)
from personkort import ident as idents
from personkort.feed.records import (
    PARTNER_ROLES,
    Change,
    EventKind,
    FeedEvent,
    FeedIdent,
    FeedPerson,
    FeedRelation,
    FeedSnapshot,
    Gradering,
    Role,
)
from personkort.records import Extract, Quarantined, Register, SourceCount

FR = Register.FOLKEREGISTER
SNAPSHOT_FILE = re.compile(r"folkeregister_(\d{8})\.jsonl")
INBOX_FILE = re.compile(r"hendelser_(\d{8}T\d{6})\.jsonl")
OSLO = ZoneInfo("Europe/Oslo")
MAX_EVENTS = 10_000  # events one API body may carry
_PARTNER_TYPES = frozenset(r.value for r in PARTNER_ROLES)
# code -> member: an enum's own lookup is slow next to a dict's, and this runs per relation
_ROLES = {r.value: r for r in Role}
_GRADERINGER = {g.value: g for g in Gradering}


class TooManyEvents(ValueError):
    """An API body with more events than one request may carry (the API answers 413)."""


@dataclass(slots=True)
class EventBatch:
    """One delivery of events (an inbox file, an API body) as read."""

    events: list[FeedEvent] = field(default_factory=list)
    quarantine: list[Quarantined] = field(default_factory=list)
    count: SourceCount = field(default_factory=lambda: SourceCount(FR, ""))


# ---- the nightly snapshot -------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """A snapshot line that parsed, waiting for the schemas and the duplicate check."""

    n: int
    raw: bytes
    row: dict[str, Any]
    identifiers: list[dict[str, Any]]
    family: list[dict[str, Any]]  # forelderBarnRelasjon, for its schema
    sivilstand: list[dict[str, Any]]  # sivilstand, for its schema
    relations: list[FeedRelation]
    numbers: tuple[str, ...]  # folkeregisteridentifikator's, in order
    key: str  # the number in use


def line_digest(raw: bytes) -> str:
    """A line's digest, recognising an unchanged person before the line is parsed. Without
    ``sistEndret``: a snapshot may stamp every line with the time it was taken. (Cut by
    position, not a regular expression: this runs for every line of a million-person file;
    from the end, where the field stands, not through the whole line first.)"""
    start = raw.rfind(b'"sistEndret"')
    if start >= 0:
        end = raw.find(b",", start)
        if end < 0:
            end = raw.find(b"}", start)
        raw = raw[:start] + raw[end:] if end >= 0 else raw[:start]
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


# Snapshot lines parsed, validated and turned into persons at a time. Whole, a million-person
# snapshot's parsed lines, their JSON and their schema frames were most of a full night's peak
# (docs/benchmarks.md, "Sixth session"); a chunk's memory is reused by the next, and the result
# is the same (lines keep file order).
CHUNK_LINES = 20_000


def read_snapshot(path: Path, known: Mapping[str, str] | None = None) -> Extract:
    """Read one night's snapshot; raise RefusedSource if it cannot be read as text at all.
    A line whose digest is in ``known`` (digest → person key: the persons the store holds,
    unchanged since) is counted as read and accepted and not parsed: a night costs what
    changed. If a parsed line names the number of a skipped one, the file is read whole:
    only then does the duplicate check see both lines, in file order."""
    file_date = _file_date(path)
    b = Boundary(FR, path.name)
    snapshot = _Snapshot(b)
    unchanged: list[str] = []
    skipping = bool(known)
    skip, skipped = known or {}, unchanged.append  # looked up once, not per line
    try:
        with path.open("rb") as f:
            chunk: list[_Line] = []
            # this loop runs for every line of a million-person file: nothing in it copies a
            # line that need not be copied
            for n, raw_bytes in enumerate(f, start=1):
                raw_bytes = raw_bytes.rstrip(b"\r\n")  # a line ends in its one \n
                if not raw_bytes or raw_bytes.isspace():
                    continue
                if skipping:
                    digest = line_digest(raw_bytes)
                    if digest in skip:
                        skipped(digest)
                        continue
                if (line := _parsed_line(b, n, raw_bytes)) is not None:
                    chunk.append(line)
                if len(chunk) >= CHUNK_LINES:
                    snapshot.add(chunk)
                    chunk = []
            snapshot.add(chunk)
    except OSError as exc:
        raise RefusedSource(FR, path.name, f"cannot be read: {exc.strerror or exc}") from None
    finally:
        _number_problem.cache_clear()  # a million numbers: not kept past the read
    if known and unchanged and _names_a_skipped_person(snapshot.persons, unchanged, known):
        return read_snapshot(path)
    newest = snapshot.newest
    as_of = file_date if newest is None or newest < file_date else newest
    out = Extract(
        feed=FeedSnapshot(
            path.name, as_of, snapshot.persons, snapshot.digests, unchanged, read_against=known
        )
    )
    b.count.read += len(unchanged)
    b.count.accepted += len(unchanged)
    return b.finish(out)


def _names_a_skipped_person(
    persons: list[FeedPerson], unchanged: list[str], known: Mapping[str, str]
) -> bool:
    """Whether a parsed person holds the number of a line skipped as unchanged: a second line
    for one person (a kode 6 copy beside the unchanged original, say) would otherwise pass."""
    if not persons:
        return False
    parsed = set().union(*(p.numbers for p in persons))  # a few thousand numbers
    # the skipped lines' keys, looked up without a set of a million of them (seconds)
    return any(map(parsed.__contains__, map(known.__getitem__, unchanged)))


def _parsed_line(b: Boundary, n: int, raw_bytes: bytes) -> _Line | None:
    """One snapshot line's values, or None with the line quarantined."""
    loc = f"folkeregister:line:{n}"
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedSource(FR, b.count.source, f"not UTF-8 text (line {n})") from None
    obj = _decoded(b, loc, raw_bytes, text)
    if obj is _UNREADABLE:
        return None
    try:
        return _line(obj, n, raw_bytes)
    except BadValue as exc:
        b.reject(loc, str(exc), text)
        return None


class _Snapshot:
    """The snapshot's persons as its chunks of parsed lines pass the schemas and the
    duplicate check, in file order."""

    def __init__(self, b: Boundary) -> None:
        self.b = b
        self.persons: list[FeedPerson] = []
        self.digests: dict[str, str] = {}
        self.newest: dt.datetime | None = None
        self.claimed: dict[str, int] = {}  # number -> the line that claimed it

    def add(self, lines: list[_Line]) -> None:
        identifiers: list[dict[str, Any]] = []
        family: list[dict[str, Any]] = []
        sivilstand: list[dict[str, Any]] = []
        for index, line in enumerate(lines):
            for items, found in (
                (identifiers, line.identifiers),
                (family, line.family),
                (sivilstand, line.sivilstand),
            ):
                for item in found:
                    item["line"] = index
                items += found
        failures = schema_failures(schemas.FeedPersonLine, [line.row for line in lines])
        for schema, items, what in (
            (schemas.FeedIdentifier, identifiers, "folkeregisteridentifikator"),
            (schemas.FeedFamily, family, "forelderBarnRelasjon"),
            (schemas.FeedSivilstand, sivilstand, "sivilstand"),
        ):
            for i, reason in schema_failures(schema, items).items():
                _add(failures, items[i]["line"], f"{what}: {reason}")
        _claim_numbers(lines, failures, self.claimed)
        b = self.b
        for i, line in enumerate(lines):
            loc = f"folkeregister:line:{line.n}"
            b.count.read += 1
            if i in failures:
                b.reject_counted(loc, failures[i], line.raw.decode("utf-8"))
                continue
            b.count.accepted += 1
            person = _person(line, loc)
            self.persons.append(person)
            self.digests[line.key] = line_digest(line.raw)
            if person.changed_at is not None and (
                self.newest is None or person.changed_at > self.newest
            ):
                self.newest = person.changed_at


def _file_date(path: Path) -> dt.datetime:
    """The snapshot's date from its name, at 00:00 in Oslo; a name that is not one refuses it."""
    match = SNAPSHOT_FILE.fullmatch(path.name)
    if not match:
        raise RefusedSource(
            FR, path.name, "not a Folkeregister snapshot name (folkeregister_YYYYMMDD.jsonl)"
        )
    try:
        day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        raise RefusedSource(FR, path.name, "the file name's date is not a date") from None
    return dt.datetime.combine(day, dt.time(), tzinfo=OSLO)


def _claim_numbers(lines: list[_Line], failures: dict[int, str], claimed: dict[str, int]) -> None:
    """The first line that reads claims its numbers; a later one naming any of them is a
    duplicate and quarantined whole (two persons with one number cannot both be the feed's).
    ``claimed``: the numbers earlier lines claimed, and the lines that did."""
    for i, line in enumerate(lines):
        if i in failures:
            continue
        earlier = next((claimed[n] for n in line.numbers if n in claimed), None)
        if earlier is not None:
            failures[i] = f"duplicate person: a number already claimed by line {earlier}"
            continue
        for number in line.numbers:
            claimed[number] = line.n


def _add(failures: dict[int, str], index: int, reason: str) -> None:
    failures[index] = f"{failures[index]}; {reason}" if index in failures else reason


def _line(obj: object, n: int, raw: bytes) -> _Line:
    """A snapshot line's values, each parsed into its type; BadValue says why not."""
    if not isinstance(obj, dict):
        raise BadValue("line is not a JSON object")
    items = _objects(obj, "folkeregisteridentifikator", required=True)
    if not items:
        raise BadValue("folkeregisteridentifikator is empty: the person has no number")
    if len(items) > limits.FEED_NUMBERS:
        raise BadValue(f"{len(items)} identifiers, at most {limits.FEED_NUMBERS} read")
    identifiers = []
    what = "folkeregisteridentifikator"
    for k, item in enumerate(items, start=1):
        identifiers.append(
            {
                "line": 0,
                "identifikasjonsnummer": _number(item.get("identifikasjonsnummer"), what, k),
                "type": _code(item, "type", what),
                "status": _code(item, "status", what),
            }
        )
    numbers = tuple(i["identifikasjonsnummer"] for i in identifiers)
    if len(set(numbers)) != len(numbers):
        raise BadValue("folkeregisteridentifikator holds the same number twice")
    in_use = sum(1 for i in identifiers if i["status"] == "I_BRUK")
    if in_use != 1:
        raise BadValue(f"{in_use} identifiers I_BRUK, exactly one expected")
    navn = obj.get("navn")
    if not isinstance(navn, dict):
        raise BadValue("navn is missing or not an object")
    row: dict[str, Any] = {
        "fornavn": _text(navn, "fornavn", "navn", required=True),
        "mellomnavn": _text(navn, "mellomnavn", "navn"),
        "etternavn": _text(navn, "etternavn", "navn", required=True),
        "foedselsdato": _date(obj, "foedselsdato"),
        "adressebeskyttelse": _code(obj, "adressebeskyttelse"),
        "doedsdato": _date(obj, "doedsdato"),
        "sistEndret": _stamp(obj, "sistEndret", required=False),
    }
    born, died = row["foedselsdato"], row["doedsdato"]
    if born is not None and died is not None and died < born:
        raise BadValue("doedsdato before foedselsdato")
    relations: list[FeedRelation] = []
    family: list[dict[str, Any]] = []
    what = "forelderBarnRelasjon"
    for k, item in enumerate(_objects(obj, "forelderBarnRelasjon"), start=1):
        number = _number(item.get("relatertPersonsIdent"), what, k)
        role = _code(item, "relatertPersonsRolle", what)
        family.append({"relatertPersonsIdent": number, "relatertPersonsRolle": role})
        if role in _ROLES:
            relations.append(FeedRelation(number, _ROLES[role]))
    sivilstand: list[dict[str, Any]] = []
    what = "sivilstand"
    for k, item in enumerate(_objects(obj, "sivilstand"), start=1):
        kind = _code(item, "type", what)
        raw_number = item.get("relatertVedSivilstand")
        number = None if raw_number is None else _number(raw_number, what, k)
        sivilstand.append({"type": kind, "relatertVedSivilstand": number})
        if number is not None and kind in _PARTNER_TYPES:
            relations.append(FeedRelation(number, _ROLES[kind]))
    if len(relations) > limits.FEED_RELATIONS:
        raise BadValue(f"{len(relations)} relations, at most {limits.FEED_RELATIONS} read")
    key = next(i["identifikasjonsnummer"] for i in identifiers if i["status"] == "I_BRUK")
    return _Line(n, raw, row, identifiers, family, sivilstand, relations, numbers, key)


def _person(line: _Line, loc: str) -> FeedPerson:
    row = line.row
    return FeedPerson(
        location=loc,
        idents=tuple(
            FeedIdent(i["identifikasjonsnummer"], i["type"], i["status"] == "I_BRUK")
            for i in line.identifiers
        ),
        given_names=intern(row["fornavn"]),  # names repeat: one copy each
        middle_name=row["mellomnavn"] and intern(row["mellomnavn"]),
        surname=intern(row["etternavn"]),
        birth_date=row["foedselsdato"],
        gradering=_GRADERINGER[row["adressebeskyttelse"]],
        death_date=row["doedsdato"],
        relations=tuple(dict.fromkeys(line.relations)),
        changed_at=row["sistEndret"],
    )


# ---- the day's events -----------------------------------------------------------------------

# The payload field each kind carries.
PAYLOAD = {
    EventKind.ADRESSEBESKYTTELSE: "adressebeskyttelse",
    EventKind.FOLKEREGISTERIDENTIFIKATOR: "folkeregisteridentifikator",
    EventKind.DOEDSFALL: "doedsfall",
    EventKind.FORELDERBARNRELASJON: "forelderBarnRelasjon",
    EventKind.SIVILSTAND: "sivilstand",
}
_PAYLOAD_NEEDED = frozenset({Change.OPPRETTET, Change.KORRIGERT})
_REPLACING = frozenset({Change.KORRIGERT, Change.ANNULLERT})


def read_inbox_file(path: Path) -> EventBatch:
    """Read one inbox file of events; raise RefusedSource if it cannot be opened. A line that
    is not UTF-8 is quarantined like any other bad line: the rest may raise a protection."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RefusedSource(FR, path.name, f"cannot be read: {exc.strerror or exc}") from None
    items = (
        (f"{path.name}:line:{n}", line.rstrip(b"\r"))
        for n, line in enumerate(data.split(b"\n"), start=1)
        if line.strip()
    )
    return parse_events(items, path.name)


def events_from_json(body: object, source: str) -> EventBatch:
    """Read the events of one API body (a JSON array of event objects, already decoded);
    raise TooManyEvents if it holds more than one request may carry."""
    if not isinstance(body, list):
        b = Boundary(FR, source)
        b.reject(f"{source}:body", "the body is not a JSON array of events", _dumped(body))
        return _batch(b, [])
    if len(body) > MAX_EVENTS:
        raise TooManyEvents(f"{len(body)} events in one body, at most {MAX_EVENTS}")
    return parse_events(((f"{source}:{n}", item) for n, item in enumerate(body, start=1)), source)


def parse_events(items: Iterable[tuple[str, object]], source: str) -> EventBatch:
    """Read events: each item is (location, value), the value either a raw line (``bytes``,
    from a file) or a JSON value already decoded (from an API body)."""
    b = Boundary(FR, source)
    for loc, value in items:
        if isinstance(value, bytes):
            raw = value.decode("utf-8", errors="replace")
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                b.reject(loc, "not UTF-8 text", raw)
                continue
            obj = _decoded(b, loc, value, text)
            if obj is _UNREADABLE:
                continue
        else:
            raw, obj = _dumped(value), value
            if len(raw) > limits.FEED_LINE_BYTES:
                b.reject(loc, f"event over {limits.FEED_LINE_BYTES} bytes, not read", _head(raw))
                continue
        try:
            row = _event_values(obj)
        except BadValue as exc:
            b.reject(loc, str(exc), raw)
            continue
        b.candidate(row, loc, raw)
    events = [_event(row, loc) for row, loc in b.validated(schemas.FeedEventItem)]
    return _batch(b, events)


def _batch(b: Boundary, events: list[FeedEvent]) -> EventBatch:
    out = b.finish(Extract())
    return EventBatch(events, out.quarantine, out.counts[0])


def _event_values(obj: object) -> dict[str, Any]:
    """An event's values, each parsed into its type; BadValue says why not."""
    if not isinstance(obj, dict):
        raise BadValue("event is not a JSON object")
    event_id = _text(obj, "hendelseId", required=True)
    replaces = _text(obj, "tidligereHendelseId")
    check_fits(
        {"hendelseId": event_id, "tidligereHendelseId": replaces},
        {"hendelseId": limits.FEED_EVENT_ID, "tidligereHendelseId": limits.FEED_EVENT_ID},
    )
    numbers = obj.get("personidenter")
    if not isinstance(numbers, list) or not numbers:
        raise BadValue("personidenter is missing or not a non-empty list")
    if len(numbers) > limits.FEED_NUMBERS:
        raise BadValue(f"{len(numbers)} personidenter, at most {limits.FEED_NUMBERS} read")
    row: dict[str, Any] = {
        "hendelseId": event_id,
        "opprettet": _stamp(obj, "opprettet", required=True),
        "opplysningstype": _code(obj, "opplysningstype"),
        "endringstype": _code(obj, "endringstype"),
        "tidligereHendelseId": replaces,
        "gradering": None,
        "status": None,
        "relatertPersonsRolle": None,
        "sivilstandType": None,
        "_idents": tuple(_number(n, "personidenter", k) for k, n in enumerate(numbers, start=1)),
        "_payload": {},
    }
    kind, change = row["opplysningstype"], row["endringstype"]
    if change in _REPLACING and replaces is None:
        raise BadValue(f"tidligereHendelseId is missing: {change} names the event it replaces")
    if kind not in EventKind._value2member_map_:
        return row  # an unknown kind: the schema says so
    if change == Change.ANNULLERT:
        return row  # a cancellation's payload, if repeated, says nothing
    name = PAYLOAD[EventKind(kind)]
    payload = obj.get(name)
    if payload is None:
        if change in _PAYLOAD_NEEDED:
            raise BadValue(f"{name} is missing: {kind} {change} needs it")
        return row
    if not isinstance(payload, dict):
        raise BadValue(f"{name} is not an object")
    row["_payload"] = _payload(EventKind(kind), payload, name, row)
    return row


def _payload(
    kind: EventKind, payload: dict[str, Any], name: str, row: dict[str, Any]
) -> dict[str, Any]:
    """The event's fields for its payload; the codes go to ``row`` for the schema."""
    if kind is EventKind.ADRESSEBESKYTTELSE:
        row["gradering"] = _code(payload, "gradering", name)
        return {}
    if kind is EventKind.FOLKEREGISTERIDENTIFIKATOR:
        number = _number(payload.get("identifikasjonsnummer"), name)
        row["status"] = _code(payload, "status", name)
        return {"number": number, "type": _code(payload, "type", name)}
    if kind is EventKind.DOEDSFALL:
        death = _date(payload, "doedsdato")
        if death is None:
            raise BadValue("doedsfall.doedsdato is missing")
        return {"death_date": death}
    if kind is EventKind.FORELDERBARNRELASJON:
        number = _number(payload.get("relatertPersonsIdent"), name)
        row["relatertPersonsRolle"] = _code(payload, "relatertPersonsRolle", name)
        return {"related": number}
    row["sivilstandType"] = _code(payload, "type", name)
    raw_number = payload.get("relatertVedSivilstand")
    return {"related": None if raw_number is None else _number(raw_number, name)}


def _event(row: dict[str, Any], loc: str) -> FeedEvent:
    kind = EventKind(row["opplysningstype"])
    change = Change(row["endringstype"])
    payload = row["_payload"]
    extra: dict[str, Any] = {}
    if change is Change.ANNULLERT:
        pass  # a cancellation names what it cancels, and says nothing itself
    elif kind is EventKind.ADRESSEBESKYTTELSE and row["gradering"] is not None:
        extra["gradering"] = Gradering(row["gradering"])
    elif kind is EventKind.FOLKEREGISTERIDENTIFIKATOR and payload:
        extra["ident"] = FeedIdent(payload["number"], payload["type"], row["status"] == "I_BRUK")
    elif kind is EventKind.DOEDSFALL and payload:
        extra["death_date"] = payload["death_date"]
    elif kind is EventKind.FORELDERBARNRELASJON and payload:
        extra["relation"] = FeedRelation(payload["related"], Role(row["relatertPersonsRolle"]))
    elif (
        kind is EventKind.SIVILSTAND
        and payload.get("related")
        and row["sivilstandType"] in _PARTNER_TYPES
    ):
        extra["relation"] = FeedRelation(payload["related"], Role(row["sivilstandType"]))
    return FeedEvent(
        event_id=row["hendelseId"],
        created=row["opprettet"],
        idents=row["_idents"],
        kind=kind,
        change=change,
        replaces=row["tidligereHendelseId"],
        location=loc,
        **extra,
    )


# ---- values shared by both ------------------------------------------------------------------

_UNREADABLE = object()


def _decoded(b: Boundary, loc: str, raw_bytes: bytes, text: str) -> object:
    """A line's JSON value, or ``_UNREADABLE`` with the line quarantined (counted as read)."""
    if len(raw_bytes) > limits.FEED_LINE_BYTES:
        b.reject(loc, f"line over {limits.FEED_LINE_BYTES} bytes, not read", _head(text))
        return _UNREADABLE
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # cut short: JSON that ran out, not JSON that went wrong
        body = text.strip()
        cut = body.startswith(("{", "[")) and (
            exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        )
        reason = "cut short (truncated json)" if cut else "invalid json"
        b.reject(loc, f"{reason}: {exc.msg} (column {exc.colno})", text)
    except RecursionError:
        b.reject(loc, "invalid json: nested too deeply to read", text)
    except ValueError:  # an integer longer than Python converts (4300 digits)
        b.reject(loc, "invalid json: a number too long to read", text)
    return _UNREADABLE


def _head(text: str) -> str:
    """An oversize line as the quarantine keeps it: its first part, marked as cut."""
    return text[: limits.FEED_LINE_BYTES] + "…"


def _dumped(value: object) -> str:
    """An API item as the quarantine keeps it."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        return "[an item that cannot be written back as JSON]"


def _objects(obj: dict[str, Any], key: str, *, required: bool = False) -> list[dict[str, Any]]:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadValue(f"{key} is missing")
        return []
    if value.__class__ is not list:
        raise BadValue(f"{key} is not a list of objects")
    for item in value:
        if item.__class__ is not dict:
            raise BadValue(f"{key} is not a list of objects")
    return value


def _text(obj: dict[str, Any], key: str, part: str = "", *, required: bool = False) -> str | None:
    """Text or None; a value of another type is bad, and the reason never quotes it."""
    value = obj.get(key)
    if value.__class__ is str and value.isascii() and "\x00" not in value:  # the usual case
        value = value.strip()
        if value:
            return value
    elif value.__class__ is str:
        problem = limits.text_problem(value)
        if problem is not None:
            raise BadValue(f"{_name(key, part)}: {problem}")
        value = value.strip()
        if value:
            return value
    elif value is not None:
        raise BadValue(f"{_name(key, part)} is not text ({type(value).__name__})")
    if required:
        raise BadValue(f"{_name(key, part)} is missing")
    return None


def _name(key: str, part: str) -> str:
    return f"{part}.{key}" if part else key


def _code(obj: dict[str, Any], key: str, part: str = "") -> str:
    """A required code (the schema checks it is a known one), bounded so it cannot be huge."""
    value = obj.get(key)
    if (
        value.__class__ is str
        and 0 < len(value) <= _CODE_LENGTH
        and value.isascii()
        and value.isidentifier()  # letters, digits and _ : the codes' alphabet, no NUL
    ):
        return intern(value)  # type: ignore[arg-type]  # a million lines, a few codes
    value = _text(obj, key, part, required=True)
    assert value is not None
    if len(value) > _CODE_LENGTH:
        raise BadValue(f"{_name(key, part)}: {limits.FEED_CODE.problem(value)}")
    return value


_CODE_LENGTH = limits.FEED_CODE.length or 0


def _number(value: object, what: str, k: int = 0) -> str:
    """A valid identity number, as the feed writes it: 11 digits with right control digits."""
    problem = _number_problem(value) if value.__class__ is str else None
    if problem is None and value.__class__ is str:
        return intern(value)  # type: ignore[arg-type]  # a person's and relatives' lines share it
    where = f"{what} {k}" if k else what
    if problem is None:
        problem = "the number is missing" if value is None else "the number is not text"
    raise BadValue(f"{where}: {problem}")


@lru_cache(maxsize=1 << 21)
def _number_problem(value: str) -> str | None:
    """What is wrong with a number (never the number), or None; the feed names each number
    a few times (its person, its relatives' relations), so each is checked once."""
    if len(value) != 11 or not value.isdigit() or not value.isascii():
        return "the number is not 11 digits"
    try:
        idents.parse(value)  # not the process-wide cache: the feed's numbers are read once
    except idents.IdentError as exc:
        return f"invalid number ({exc.problem.value})"
    return None


def _date(obj: dict[str, Any], key: str) -> dt.date | None:
    text = _text(obj, key)
    return None if text is None else _parsed_date(text, key)


@lru_cache(maxsize=1 << 16)
def _parsed_date(text: str, key: str) -> dt.date | None:
    """A date (a snapshot's million lines hold a few tens of thousands of them)."""
    return parse_date(text, key)


def _stamp(obj: dict[str, Any], key: str, *, required: bool) -> dt.datetime | None:
    text = _text(obj, key, required=required)
    return None if text is None else _parsed_stamp(text, key)


@lru_cache(maxsize=1 << 16)
def _parsed_stamp(text: str, key: str) -> dt.datetime:
    """A timestamp with its offset (a snapshot's lines share a few): BadValue if it has none."""
    stamp = parse_timestamp(text, key)
    if stamp is None or stamp.tzinfo is None:
        raise BadValue(f"{key} has no UTC offset")
    return stamp
