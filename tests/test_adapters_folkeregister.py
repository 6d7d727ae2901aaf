"""The Folkeregister feed adapter: the sample snapshots and events, broken lines, the drop folder
without a feed, and arbitrary lines (hypothesis) that never raise and always conserve counts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.boundary import RefusedSource
from adapters.drop import read_drop, read_feed, sources
from adapters.folkeregister import (
    MAX_EVENTS,
    EventBatch,
    TooManyEvents,
    events_from_json,
    line_digest,
    parse_events,
    read_inbox_file,
    read_snapshot,
)
from personkort.feed.records import Change, EventKind, FeedRelation, Gradering, Role
from personkort.ident import make_ident
from personkort.records import Extract, Register
from tests.conftest import read_csv

FR = Register.FOLKEREGISTER
OSLO = ZoneInfo("Europe/Oslo")
SNAPSHOT = {"night1": "folkeregister_20261120.jsonl", "night2": "folkeregister_20261121.jsonl"}
GOOD = make_ident(dt.date(1985, 3, 14), 123) or ""
OTHER = make_ident(dt.date(1990, 6, 2), 234) or ""
DNR = make_ident(dt.date(1985, 3, 14), 345, dnr=True) or ""
THIRD = make_ident(dt.date(1970, 1, 5), 456) or ""


def snapshot_of(night: Path) -> Path:
    return night / "folkeregister" / SNAPSHOT[night.name]


def check_conserved(extract: Extract, lines: int) -> None:
    """One count, every non-blank line read, each accepted or quarantined, nothing invented."""
    (count,) = extract.counts
    assert count.register is FR
    assert count.read == lines == count.accepted + count.quarantined
    assert extract.feed is not None
    assert count.accepted == len(extract.feed.persons) == len(extract.feed.digests)
    assert count.quarantined == len(extract.quarantine)
    assert all(q.register is FR and q.reason and q.raw for q in extract.quarantine)


def check_batch(batch: EventBatch, items: int) -> None:
    assert batch.count.register is FR
    assert batch.count.read == items == batch.count.accepted + batch.count.quarantined
    assert batch.count.accepted == len(batch.events)
    assert batch.count.quarantined == len(batch.quarantine)


# ---- the sample nights ----------------------------------------------------------------------


def test_sample_snapshot_reads_every_line(night: Path) -> None:
    path = snapshot_of(night)
    lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
    extract = read_snapshot(path)
    check_conserved(extract, len(lines))
    assert extract.quarantine == []  # the sample's feed has no broken lines
    feed = extract.feed
    assert feed is not None and feed.file == path.name
    by_line = {p.location: p for p in feed.persons}
    for n, raw in enumerate(lines, start=1):
        person = by_line[f"folkeregister:line:{n}"]
        assert feed.digests[person.key] == line_digest(raw)


def test_sample_as_of_is_the_newest_change_after_midnight(night: Path) -> None:
    feed = read_snapshot(snapshot_of(night)).feed
    assert feed is not None
    day = dt.date(2026, 11, 20) if night.name == "night1" else dt.date(2026, 11, 21)
    # every line says sistEndret 01:10+01:00 of the file's day: later than 00:00 Oslo
    assert feed.as_of == dt.datetime.combine(day, dt.time(1, 10), tzinfo=OSLO)
    assert feed.as_of > dt.datetime.combine(day, dt.time(), tzinfo=OSLO)


def test_replaced_d_numbers_stay_with_their_fodselsnummer(night: Path) -> None:
    feed = read_snapshot(snapshot_of(night)).feed
    assert feed is not None
    by_number = {n: p for p in feed.persons for n in p.numbers}
    both = [r for r in read_csv(night / "truth" / "persons.csv") if r["fnr"] and r["dnr"]]
    assert both, "the sample has people who went from D-nummer to fødselsnummer"
    for row in both:
        person = by_number[row["fnr"]]
        assert person.key == row["fnr"]
        assert person.numbers == {row["fnr"], row["dnr"]}
        (old,) = [i for i in person.idents if i.number == row["dnr"]]
        assert not old.in_use and old.type == "DNR"


def test_sample_names_births_deaths_and_protection(night: Path) -> None:
    feed = read_snapshot(snapshot_of(night)).feed
    assert feed is not None
    by_number = {n: p for p in feed.persons for n in p.numbers}
    rows = read_csv(night / "truth" / "persons.csv")
    # a death the day's events reported is in the next snapshot before the registers know it
    died_today = {
        r["person_key"]: dt.date.fromisoformat(r["effect"].removeprefix("died "))
        for r in read_csv(night.parent / "hendelser" / "expected.csv")
        if r["effect"].startswith("died ")
    }
    deaths = 0
    for row in rows:
        person = by_number.get(row["fnr"] or row["dnr"])
        if person is None:
            continue
        assert person.surname == row["etternavn"] and person.given_names == row["fornavn"]
        assert person.middle_name == (row["mellomnavn"] or None)
        assert person.birth_date == dt.date.fromisoformat(row["fodselsdato"])
        if row["dodsdato"]:
            deaths += 1
            assert person.death_date == dt.date.fromisoformat(row["dodsdato"])
        elif night.name == "night2" and row["person_key"] in died_today:
            assert person.death_date == died_today[row["person_key"]]
        else:
            assert person.death_date is None
    assert deaths >= 1
    marked = {p.gradering for p in feed.persons}
    assert {Gradering.UGRADERT, Gradering.FORTROLIG, Gradering.STRENGT_FORTROLIG} <= marked


def test_sample_relations_are_parsed(night: Path) -> None:
    feed = read_snapshot(snapshot_of(night)).feed
    assert feed is not None
    roles = {r.role for p in feed.persons for r in p.relations}
    assert {Role.MOR, Role.BARN, Role.GIFT} <= roles
    by_key = {p.key: p for p in feed.persons}
    # a spouse relation is stated from both ends in the sample
    for person in feed.persons:
        for relation in person.relations:
            if relation.role is Role.GIFT and relation.related in by_key:
                spouse = by_key[relation.related]
                assert FeedRelation(person.key, Role.GIFT) in spouse.relations
    # UGIFT lines produce no relation: only partners and family do
    assert all(r.role in set(Role) for p in feed.persons for r in p.relations)


def test_sample_events_parse(sample: Path) -> None:
    files = sorted((sample / "hendelser").glob("hendelser_*.jsonl"))
    batches = [read_inbox_file(path) for path in files]
    for path, batch in zip(files, batches, strict=True):
        check_batch(batch, sum(1 for line in path.read_bytes().split(b"\n") if line.strip()))
        assert batch.count.source == path.name
        assert batch.quarantine == []
    events = [e for b in batches for e in b.events]
    assert len(events) == 7
    assert len({e.event_id for e in events}) == 6  # one delivered twice: both read
    cancel = next(e for e in events if e.change is Change.ANNULLERT)
    assert cancel.replaces in {e.event_id for e in events}
    assert cancel.gradering is None  # a cancellation says nothing itself
    death = next(e for e in events if e.kind is EventKind.DOEDSFALL)
    assert death.death_date == dt.date(2026, 11, 20)
    raised = [e for e in events if e.gradering is Gradering.STRENGT_FORTROLIG]
    assert len(raised) == 5
    assert all(e.created.utcoffset() == dt.timedelta(hours=1) for e in events)
    assert events[0].location == f"{files[0].name}:line:1"


# ---- broken snapshot lines ------------------------------------------------------------------


def person_line(**changes: object) -> dict[str, object]:
    line: dict[str, object] = {
        "folkeregisteridentifikator": [
            {"identifikasjonsnummer": DNR, "type": "DNR", "status": "OPPHOERT"},
            {"identifikasjonsnummer": GOOD, "type": "FNR", "status": "I_BRUK"},
        ],
        "navn": {"fornavn": "Nora", "mellomnavn": None, "etternavn": "Andreassen"},
        "foedselsdato": "1985-03-14",
        "adressebeskyttelse": "UGRADERT",
        "doedsdato": None,
        "forelderBarnRelasjon": [{"relatertPersonsIdent": OTHER, "relatertPersonsRolle": "MOR"}],
        "sivilstand": [{"type": "GIFT", "relatertVedSivilstand": OTHER}],
        "sistEndret": "2026-11-20T01:10:00+01:00",
    }
    line.update(changes)
    return line


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _bad_control_digit(number: str) -> str:
    return number[:10] + str((int(number[10]) + 1) % 10)


BROKEN_LINES = {
    "cut short": (_dumps(person_line())[:60], "cut short"),
    "not json": ("this is not json", "invalid json"),
    "not an object": ("[1, 2, 3]", "not a JSON object"),
    "two I_BRUK": (
        _dumps(
            person_line(
                folkeregisteridentifikator=[
                    {"identifikasjonsnummer": DNR, "type": "DNR", "status": "I_BRUK"},
                    {"identifikasjonsnummer": GOOD, "type": "FNR", "status": "I_BRUK"},
                ]
            )
        ),
        "2 identifiers I_BRUK",
    ),
    "no identifier": (_dumps(person_line(folkeregisteridentifikator=[])), "no number"),
    "bad control digits": (
        _dumps(
            person_line(
                folkeregisteridentifikator=[
                    {
                        "identifikasjonsnummer": _bad_control_digit(GOOD),
                        "type": "FNR",
                        "status": "I_BRUK",
                    }
                ]
            )
        ),
        "control_digit",
    ),
    "ten digits": (
        _dumps(
            person_line(
                folkeregisteridentifikator=[
                    {"identifikasjonsnummer": GOOD[:10], "type": "FNR", "status": "I_BRUK"}
                ]
            )
        ),
        "not 11 digits",
    ),
    "unknown gradering": (_dumps(person_line(adressebeskyttelse="HEMMELIG")), "adressebeskyttelse"),
    "unknown role": (
        _dumps(
            person_line(
                forelderBarnRelasjon=[
                    {"relatertPersonsIdent": OTHER, "relatertPersonsRolle": "ONKEL"}
                ]
            )
        ),
        "relatertPersonsRolle",
    ),
    "unknown sivilstand": (
        _dumps(person_line(sivilstand=[{"type": "FORLOVET", "relatertVedSivilstand": None}])),
        "sivilstand",
    ),
    "bad relation number": (
        _dumps(
            person_line(
                forelderBarnRelasjon=[
                    {
                        "relatertPersonsIdent": _bad_control_digit(OTHER),
                        "relatertPersonsRolle": "MOR",
                    }
                ]
            )
        ),
        "forelderBarnRelasjon 1",
    ),
    "unparsable date": (_dumps(person_line(foedselsdato="1985-02-30")), "foedselsdato"),
    "naive sistEndret": (_dumps(person_line(sistEndret="2026-11-20T01:10:00")), "UTC offset"),
    "surname missing": (
        _dumps(person_line(navn={"fornavn": "Nora", "mellomnavn": None})),
        "navn.etternavn is missing",
    ),
    "surname a number": (
        _dumps(person_line(navn={"fornavn": "Nora", "etternavn": 7})),
        "navn.etternavn is not text",
    ),
    "oversize line": (
        _dumps(person_line(navn={"fornavn": "N" * 70_000, "etternavn": "A"})),
        "over 65536 bytes",
    ),
}


def _snapshot(tmp_path: Path, lines: list[str], name: str = "folkeregister_20261120.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _lone_line(number: str) -> str:
    """A snapshot line of one person with one number and no relations."""
    return _dumps(
        person_line(
            folkeregisteridentifikator=[
                {"identifikasjonsnummer": number, "type": "FNR", "status": "I_BRUK"}
            ],
            forelderBarnRelasjon=[],
            sivilstand=[],
        )
    )


@pytest.mark.parametrize("case", sorted(BROKEN_LINES))
def test_broken_snapshot_line_is_quarantined_with_location_and_reason(
    case: str, tmp_path: Path
) -> None:
    broken, reason_part = BROKEN_LINES[case]
    good = _lone_line(OTHER)
    third = good.replace(OTHER, THIRD)
    extract = read_snapshot(_snapshot(tmp_path, [good, broken, third]))
    check_conserved(extract, 3)
    (bad,) = extract.quarantine
    assert bad.location == "folkeregister:line:2"
    assert reason_part in bad.reason, bad.reason
    assert GOOD not in bad.reason and OTHER not in bad.reason and DNR not in bad.reason
    assert bad.raw.startswith(broken[:50])
    assert extract.feed is not None
    assert [p.key for p in extract.feed.persons] == [OTHER, THIRD]


def test_a_second_line_with_a_claimed_number_is_a_duplicate(tmp_path: Path) -> None:
    first = _dumps(person_line())
    only_the_dnr = _dumps(
        person_line(
            folkeregisteridentifikator=[
                {"identifikasjonsnummer": DNR, "type": "DNR", "status": "I_BRUK"}
            ]
        )
    )
    extract = read_snapshot(_snapshot(tmp_path, [first, only_the_dnr]))
    check_conserved(extract, 2)
    (dup,) = extract.quarantine
    assert dup.location == "folkeregister:line:2" and "duplicate" in dup.reason
    assert "line 1" in dup.reason and DNR not in dup.reason


@pytest.mark.parametrize("chunk", [1, 2])
def test_a_snapshot_read_in_chunks_reads_as_one_whole(
    chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is parsed and validated a chunk of lines at a time (memory); a duplicate
    whose first line was in an earlier chunk, and a schema failure, are found all the same."""
    first = _dumps(person_line())
    other = _lone_line(OTHER)
    bad_code = other.replace(OTHER, THIRD).replace('"UGRADERT"', '"HEMMELIG"')
    only_the_dnr = _dumps(
        person_line(
            folkeregisteridentifikator=[
                {"identifikasjonsnummer": DNR, "type": "DNR", "status": "I_BRUK"}
            ]
        )
    )
    path = _snapshot(tmp_path, [first, other, "{broken", bad_code, only_the_dnr])
    whole = read_snapshot(path)
    monkeypatch.setattr("adapters.folkeregister.CHUNK_LINES", chunk)
    chunked = read_snapshot(path)
    check_conserved(chunked, 5)
    assert chunked.feed is not None and whole.feed is not None
    assert chunked.feed.persons == whole.feed.persons and chunked.feed.digests == whole.feed.digests
    assert [p.key for p in chunked.feed.persons] == [GOOD, OTHER]
    assert sorted(chunked.quarantine, key=repr) == sorted(whole.quarantine, key=repr)
    reasons = {q.location: q.reason for q in chunked.quarantine}
    assert set(reasons) == {f"folkeregister:line:{n}" for n in (3, 4, 5)}
    assert (
        "duplicate" in reasons["folkeregister:line:5"]
        and "line 1" in reasons["folkeregister:line:5"]
    )
    assert "adressebeskyttelse" in reasons["folkeregister:line:4"]


def test_a_relation_to_someone_the_snapshot_lacks_is_kept(tmp_path: Path) -> None:
    extract = read_snapshot(_snapshot(tmp_path, [_dumps(person_line())]))
    assert extract.feed is not None
    (person,) = extract.feed.persons
    assert person.key == GOOD and person.numbers == {GOOD, DNR}
    assert set(person.relations) == {FeedRelation(OTHER, Role.MOR), FeedRelation(OTHER, Role.GIFT)}


def test_sivilstand_without_a_partner_makes_no_relation(tmp_path: Path) -> None:
    lines = [
        _dumps(
            person_line(
                forelderBarnRelasjon=[],
                sivilstand=[
                    {"type": "SKILT", "relatertVedSivilstand": None},
                    {"type": "ENKE_ELLER_ENKEMANN", "relatertVedSivilstand": None},
                    {"type": "SEPARERT", "relatertVedSivilstand": OTHER},
                ],
            )
        )
    ]
    extract = read_snapshot(_snapshot(tmp_path, lines))
    assert extract.feed is not None
    assert extract.feed.persons[0].relations == (FeedRelation(OTHER, Role.SEPARERT),)


def test_as_of_is_midnight_oslo_when_every_change_is_older(tmp_path: Path) -> None:
    line = _dumps(person_line(sistEndret="2026-11-18T10:00:00+01:00"))
    feed = read_snapshot(_snapshot(tmp_path, [line])).feed
    assert feed is not None
    assert feed.as_of == dt.datetime(2026, 11, 20, tzinfo=OSLO)
    assert feed.as_of.utcoffset() == dt.timedelta(hours=1)


def test_non_utf8_snapshot_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "folkeregister_20261120.jsonl"
    path.write_bytes(_dumps(person_line()).encode() + b"\n" + "Åse".encode("latin-1") + b"\n")
    with pytest.raises(RefusedSource) as info:
        read_snapshot(path)
    assert info.value.register is FR and "not UTF-8" in info.value.reason


def test_unreadable_or_misnamed_snapshot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RefusedSource, match="cannot be read"):
        read_snapshot(tmp_path / "folkeregister_20261120.jsonl")
    with pytest.raises(RefusedSource, match="snapshot name"):
        read_snapshot(_snapshot(tmp_path, [], name="folkeregister.jsonl"))


# ---- broken events --------------------------------------------------------------------------


def event(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "hendelseId": "5e0c3a0e-6f7b-4a43-9d0e-1f2a3b4c5d6e",
        "opprettet": "2026-11-20T10:15:00+01:00",
        "personidenter": [GOOD, DNR],
        "opplysningstype": "ADRESSEBESKYTTELSE_V1",
        "endringstype": "OPPRETTET",
        "tidligereHendelseId": None,
        "adressebeskyttelse": {"gradering": "STRENGT_FORTROLIG"},
    }
    item.update(changes)
    return item


BROKEN_EVENTS = {
    "naive timestamp": (event(opprettet="2026-11-20T10:15:00"), "UTC offset"),
    "annullert without tidligereHendelseId": (
        event(endringstype="ANNULLERT"),
        "tidligereHendelseId is missing",
    ),
    "korrigert without tidligereHendelseId": (
        event(endringstype="KORRIGERT"),
        "tidligereHendelseId is missing",
    ),
    "empty hendelseId": (event(hendelseId=""), "hendelseId is missing"),
    "long hendelseId": (event(hendelseId="x" * 101), "hendelseId"),
    "no personidenter": (event(personidenter=[]), "personidenter"),
    "bad personident": (event(personidenter=[_bad_control_digit(GOOD)]), "personidenter 1"),
    "unknown kind": (event(opplysningstype="BOSTEDSADRESSE_V1"), "opplysningstype"),
    "unknown change": (event(endringstype="SLETTET"), "endringstype"),
    "unknown gradering": (event(adressebeskyttelse={"gradering": "HEMMELIG"}), "gradering"),
    "payload missing": (event(adressebeskyttelse=None), "adressebeskyttelse is missing"),
    "bad death date": (
        event(opplysningstype="DOEDSFALL_V1", doedsfall={"doedsdato": "2026-13-01"}),
        "doedsdato",
    ),
    "unknown role": (
        event(
            opplysningstype="FORELDERBARNRELASJON_V1",
            forelderBarnRelasjon={"relatertPersonsIdent": OTHER, "relatertPersonsRolle": "ONKEL"},
        ),
        "relatertPersonsRolle",
    ),
    "bad ident status": (
        event(
            opplysningstype="FOLKEREGISTERIDENTIFIKATOR_V1",
            folkeregisteridentifikator={
                "identifikasjonsnummer": GOOD,
                "type": "FNR",
                "status": "KANSKJE",
            },
        ),
        "status",
    ),
    "not an object": ("just text", "not a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_EVENTS))
def test_broken_api_event_is_quarantined_with_location_and_reason(case: str) -> None:
    broken, reason_part = BROKEN_EVENTS[case]
    batch = events_from_json([event(), broken, event(hendelseId="b")], "api:trace1")
    check_batch(batch, 3)
    (bad,) = batch.quarantine
    assert bad.location == "api:trace1:2" and bad.register is FR
    assert reason_part in bad.reason, bad.reason
    assert GOOD not in bad.reason and DNR not in bad.reason
    assert bad.raw == json.dumps(broken, ensure_ascii=False)
    assert [e.location for e in batch.events] == ["api:trace1:1", "api:trace1:3"]


@pytest.mark.parametrize("case", ["naive timestamp", "annullert without tidligereHendelseId"])
def test_broken_inbox_line_is_quarantined(case: str, tmp_path: Path) -> None:
    broken, reason_part = BROKEN_EVENTS[case]
    path = tmp_path / "hendelser_20261120T100000.jsonl"
    path.write_text(f"{_dumps(event())}\n{_dumps(broken)}\n", encoding="utf-8")
    batch = read_inbox_file(path)
    check_batch(batch, 2)
    assert batch.count.source == path.name
    (bad,) = batch.quarantine
    assert bad.location == f"{path.name}:line:2" and reason_part in bad.reason


def test_inbox_bad_bytes_and_oversize_lines_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "hendelser_20261120T100000.jsonl"
    big = _dumps(event(hendelseId="y" * 70_000))
    cut = _dumps(event())[:40]
    path.write_bytes(b"\xff\xfe broken\n" + big.encode() + b"\n" + cut.encode() + b"\n\n")
    batch = read_inbox_file(path)
    check_batch(batch, 3)
    reasons = {q.location: q.reason for q in batch.quarantine}
    assert "not UTF-8" in reasons[f"{path.name}:line:1"]
    assert "over 65536 bytes" in reasons[f"{path.name}:line:2"]
    assert "cut short" in reasons[f"{path.name}:line:3"]


def test_oversize_api_item_is_quarantined_not_parsed() -> None:
    batch = events_from_json([event(hendelseId="z" * 200_000)], "api:t")
    check_batch(batch, 1)
    (bad,) = batch.quarantine
    assert "over 65536 bytes" in bad.reason
    assert len(bad.raw) == 65_537 and bad.raw.endswith("…")  # kept in part, not whole


def test_api_body_that_is_not_an_array_is_one_quarantined_item() -> None:
    batch = events_from_json(event(), "api:t")
    check_batch(batch, 1)
    assert batch.events == [] and "not a JSON array" in batch.quarantine[0].reason
    assert batch.count.source == "api:t"


def test_too_many_events_in_one_body() -> None:
    with pytest.raises(TooManyEvents) as info:
        events_from_json([event()] * (MAX_EVENTS + 1), "api:t")
    assert isinstance(info.value, ValueError)
    assert len(events_from_json([event()] * MAX_EVENTS, "api:t").events) == MAX_EVENTS


def test_each_kind_of_payload_becomes_its_field() -> None:
    items = [
        event(hendelseId="1"),
        event(
            hendelseId="2",
            opplysningstype="FOLKEREGISTERIDENTIFIKATOR_V1",
            folkeregisteridentifikator={
                "identifikasjonsnummer": GOOD,
                "type": "FNR",
                "status": "I_BRUK",
            },
        ),
        event(
            hendelseId="3", opplysningstype="DOEDSFALL_V1", doedsfall={"doedsdato": "2026-11-20"}
        ),
        event(
            hendelseId="4",
            opplysningstype="FORELDERBARNRELASJON_V1",
            forelderBarnRelasjon={"relatertPersonsIdent": OTHER, "relatertPersonsRolle": "BARN"},
        ),
        event(
            hendelseId="5",
            opplysningstype="SIVILSTAND_V1",
            sivilstand={"type": "REGISTRERT_PARTNER", "relatertVedSivilstand": OTHER},
        ),
        event(
            hendelseId="6",
            opplysningstype="SIVILSTAND_V1",
            sivilstand={"type": "SKILT", "relatertVedSivilstand": None},
        ),
        event(hendelseId="7", endringstype="OPPHOERT", adressebeskyttelse=None),
        event(hendelseId="8", endringstype="ANNULLERT", tidligereHendelseId="1"),
    ]
    batch = events_from_json(items, "api:t")
    check_batch(batch, len(items))
    e = {x.event_id: x for x in batch.events}
    assert e["1"].gradering is Gradering.STRENGT_FORTROLIG and e["1"].idents == (GOOD, DNR)
    assert e["2"].ident is not None and e["2"].ident.in_use and e["2"].ident.number == GOOD
    assert e["3"].death_date == dt.date(2026, 11, 20)
    assert e["4"].relation == FeedRelation(OTHER, Role.BARN)
    assert e["5"].relation == FeedRelation(OTHER, Role.REGISTRERT_PARTNER)
    assert e["6"].relation is None and e["6"].kind is EventKind.SIVILSTAND
    assert e["7"].change is Change.OPPHOERT and e["7"].gradering is None
    assert e["8"].replaces == "1" and e["8"].gradering is None


# ---- the drop folder ------------------------------------------------------------------------


def _copy_night(sample: Path, tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop, ignore=shutil.ignore_patterns("truth"))
    for path in drop.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return drop


def test_read_drop_holds_the_feed(night: Path) -> None:
    extract = read_drop(night)
    assert extract.feed is not None and extract.feed.file == SNAPSHOT[night.name]
    assert extract.feed_refusal is None
    assert [c.source for c in extract.counts if c.register is FR] == [SNAPSHOT[night.name]]
    assert (FR, SNAPSHOT[night.name], snapshot_of(night)) in sources(night)
    assert read_feed(night).feed == extract.feed


def test_a_drop_without_the_feed_is_noted_not_refused(sample: Path, tmp_path: Path) -> None:
    drop = _copy_night(sample, tmp_path)
    with_feed = read_drop(drop)
    shutil.rmtree(drop / "folkeregister")
    extract = read_drop(drop)
    assert extract.feed is None
    assert extract.feed_refusal is not None
    assert extract.feed_refusal.register is FR
    assert extract.feed_refusal.reason == "no folkeregister snapshot delivered"
    assert extract.refusals == with_feed.refusals == []
    assert len(extract.persons) == len(with_feed.persons)


def test_two_snapshots_or_a_refused_one_do_not_stop_the_night(sample: Path, tmp_path: Path) -> None:
    drop = _copy_night(sample, tmp_path)
    folder = drop / "folkeregister"
    shutil.copy(folder / SNAPSHOT["night1"], folder / "folkeregister_20261119.jsonl")
    extract = read_drop(drop)
    assert extract.feed is None and extract.refusals == []
    assert extract.feed_refusal is not None and "2 folkeregister snapshots" in (
        extract.feed_refusal.reason
    )
    (folder / "folkeregister_20261119.jsonl").unlink()
    (folder / SNAPSHOT["night1"]).write_bytes(b"\xff\xfe\n")
    extract = read_drop(drop)
    assert extract.feed is None and extract.refusals == []
    assert extract.feed_refusal is not None and "not UTF-8" in extract.feed_refusal.reason


# ---- fuzz -----------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
_SAMPLE_LINE = _dumps(person_line())
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@st.composite
def snapshot_lines(draw: st.DrawFn) -> str:
    """A sample line mutated: a field replaced by any JSON, cut anywhere, or any text."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        obj = person_line()
        obj[draw(st.sampled_from(sorted(obj)))] = draw(_JSON)
        return _dumps(obj)
    if choice == 1:
        return _SAMPLE_LINE[: draw(st.integers(0, len(_SAMPLE_LINE)))]
    return draw(st.text(max_size=200).filter(lambda t: "\n" not in t and "\r" not in t))


@FUZZ
@given(st.lists(snapshot_lines(), max_size=6))
def test_arbitrary_snapshot_lines_never_raise_and_conserve(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "folkeregister_20261120.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8")
        extract = read_snapshot(path)
    check_conserved(extract, sum(1 for line in lines if line.encode().strip()))


@FUZZ
@given(st.lists(_JSON | st.builds(event), max_size=6))
def test_arbitrary_api_items_never_raise_and_conserve(items: list[object]) -> None:
    batch = events_from_json(items, "api:fuzz")
    check_batch(batch, len(items))


@FUZZ
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_arbitrary_inbox_bytes_never_raise_and_conserve(lines: list[bytes]) -> None:
    items = [(f"x:line:{n}", line) for n, line in enumerate(lines, start=1)]
    batch = parse_events(items, "x")
    check_batch(batch, len(lines))
