"""The adapters against the shared sample nights and their answer key."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from adapters import read_arena, read_drop, read_flyt, read_infotrygd, read_sosio
from personkort.records import Extract, Register
from tests.conftest import read_csv


@pytest.fixture
def extract(night: Path) -> Extract:
    return read_drop(night)


def _key(register: str, key: str) -> tuple[str, str]:
    return register, key


def test_every_bad_record_is_quarantined_at_its_location(night: Path, extract: Extract) -> None:
    quarantined = {(q.register.value, q.location): q.reason for q in extract.quarantine}
    bad = read_csv(night / "truth" / "bad.csv")
    assert bad, "the answer key lists bad records"
    for row in bad:
        reason = quarantined.get((row["register"], row["location"]))
        assert reason, f"{row} was not quarantined"
    assert all(q.reason and q.raw for q in extract.quarantine)


def test_quarantine_reasons_name_the_problem(night: Path, extract: Extract) -> None:
    quarantined = {(q.register.value, q.location): q.reason for q in extract.quarantine}
    expected_words = {
        "invalid FODSELSDATO": "FODSELSDATO",
        "orphan PERSON_ID": "orphan",
        "invalid FOM date": "FOM",
        "truncated person record": "truncated person record",
        "truncated json": "json",
        "bad amount": "amount",
        "bad columns": "columns",
        "missing person": "missing person",
    }
    for row in read_csv(night / "truth" / "bad.csv"):
        word = expected_words[row["kind"]]
        assert word in quarantined[(row["register"], row["location"])], row


def test_person_records_are_exactly_the_linked_ones(night: Path, extract: Extract) -> None:
    links = {_key(r["register"], r["source_key"]) for r in read_csv(night / "truth" / "links.csv")}
    read = Counter(_key(p.register.value, p.source_key) for p in extract.persons)
    assert set(read) == links
    assert max(read.values()) == 1, "a source key was read twice"


def test_counts_conserve_for_every_source(night: Path, extract: Extract) -> None:
    assert not extract.refusals
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined, c
    by_source = {c.source: c for c in extract.counts}
    # Records in, counted independently of the adapters.
    with sqlite3.connect(night / "arena" / "arena.sqlite") as db:
        for table in ("PERSON", "PERSON_IDENT_HIST", "VEDTAK", "TILTAKDELTAKER"):
            (rows,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            assert by_source[table].read == rows, table
    (info,) = (night / "infotrygd").glob("*.dat")
    assert by_source[info.name].read == len(info.read_bytes().splitlines()) - 2
    for path in (night / "kommune").iterdir():
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        system, kommune = path.name.split("_")[:2]
        header = 1 if system == "sosio" else 0
        assert by_source[f"{system}_{kommune}"].read == len(lines) - header, path.name
    # Quarantine entries per register add up with the counts.
    quarantined = Counter(q.register for q in extract.quarantine)
    for register in Register:
        counted = sum(c.quarantined for c in extract.counts if c.register is register)
        assert counted == quarantined[register]


def test_accepted_counts_are_the_records_produced(night: Path, extract: Extract) -> None:
    by_source = {c.source: c for c in extract.counts}
    arena = [r for r in extract.persons if r.register is Register.ARENA]
    assert by_source["PERSON"].accepted == len(arena)
    vedtak = [b for b in extract.state_benefits if b.register is Register.ARENA]
    assert by_source["VEDTAK"].accepted == len(vedtak)
    assert by_source["TILTAKDELTAKER"].accepted == len(extract.measures)
    assert by_source["PERSON_IDENT_HIST"].accepted == len(extract.ident_history)
    infotrygd = [
        r
        for r in [*extract.persons, *extract.state_benefits, *extract.municipal_services]
        if r.register is Register.INFOTRYGD
    ]
    (info,) = (night / "infotrygd").glob("*.dat")
    assert by_source[info.name].accepted == len(infotrygd)


NS4551_OR_MOJIBAKE = set("[\\]{|}\ufffd") | {"Ã"}


def test_norwegian_letters_come_out_right_from_all_four_formats(
    night: Path, extract: Extract
) -> None:
    links = {
        _key(r["register"], r["source_key"]): r["person_key"]
        for r in read_csv(night / "truth" / "links.csv")
    }
    persons = {p["person_key"]: p for p in read_csv(night / "truth" / "persons.csv")}
    checked: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    for record in extract.persons:
        fmt = record.register.value
        if record.register is Register.KOMMUNE:
            fmt = record.source_key.split(":")[0]
        for text in (record.surname, record.given_names, record.address or ""):
            assert not NS4551_OR_MOJIBAKE & set(text), (fmt, record.location, text)
        truth = persons[links[_key(record.register.value, record.source_key)]]
        if set("æøåÆØÅ") & set(truth["etternavn"]):
            checked[fmt] += 1
            matched[fmt] += record.surname.casefold() == truth["etternavn"].casefold()
    for fmt in ("arena", "infotrygd", "sosio", "flyt"):
        assert checked[fmt] > 0, f"no name with æøå in {fmt} to check"
        # Municipal records may carry the quirks of the spec (ae/o/aa, pre-marriage surnames).
        assert matched[fmt] / checked[fmt] >= 0.75, (fmt, matched[fmt], checked[fmt])


def test_infotrygd_values_are_exact(sample: Path) -> None:
    extract = read_infotrygd(sample / "night1" / "infotrygd" / "infotrygd_20261120.dat")
    person = next(p for p in extract.persons if p.location == "line:2")
    assert (person.surname, person.given_names) == ("ANDREASSEN", "NORA")
    assert (person.kommunenr, person.address, person.postnr) == ("3301", "SKOLEGATA 111A", "3015")
    benefit = next(b for b in extract.state_benefits if b.location == "line:3")
    assert benefit.code == "AP"
    assert benefit.from_date == dt.date(2023, 5, 18)
    assert benefit.to_date == dt.date(2024, 1, 16)
    assert benefit.grade == 100
    assert benefit.monthly_amount == Decimal("27756.96")
    sick = next(b for b in extract.state_benefits if b.code == "SP" and b.location == "line:11")
    assert sick.diagnosis == "L18"
    assert sick.to_date is None
    sh = [s for s in extract.municipal_services if s.system == "infotrygd"]
    assert sh and all(s.owner_kommune and s.service == "OKSOS" for s in sh)
    assert not [b for b in extract.state_benefits if b.code == "SH"]
    decoded = {p.surname for p in extract.persons}
    assert "SÆTERDAL" in decoded


def test_sosio_values_are_exact(sample: Path) -> None:
    extract = read_sosio(sample / "night1" / "kommune" / "sosio_5001_20261120.csv")
    first = extract.municipal_services[0]
    assert first.location == "sosio_5001:line:2"
    assert first.source_key == "sosio:5001:10047"
    assert first.service == "OKSOS"
    assert first.monthly_amount == Decimal("9414.91")
    assert first.from_date == dt.date(2025, 5, 24)
    assert first.to_date is None
    assert first.free_text == "Nødhjelp, matkort"
    second = extract.municipal_services[1]
    assert second.service == "BOLIG"
    assert (second.from_date, second.to_date) == (dt.date(2023, 11, 22), dt.date(2024, 3, 15))
    person = extract.persons[0]
    assert person.ident == "10910977828"  # typed with a space after the date part
    assert person.owner_kommune == "5001"


def test_flyt_values_are_exact(sample: Path) -> None:
    extract = read_flyt(sample / "night1" / "kommune" / "flyt_0301_20261120.jsonl")
    person = extract.persons[0]
    assert person.source_key == "flyt:0301:K-0301-0000001"
    assert (person.given_names, person.surname) == ("Britt Marit", "Lund")
    assert person.birth_date == dt.date(1953, 10, 27)
    service = extract.municipal_services[0]
    assert service.monthly_amount == Decimal("8482.45")
    assert (service.from_date, service.to_date) == (dt.date(2026, 6, 4), dt.date(2026, 10, 6))


def test_arena_values_are_exact(sample: Path) -> None:
    extract = read_arena(f"sqlite:///{sample / 'night1' / 'arena' / 'arena.sqlite'}")
    person = next(p for p in extract.persons if p.source_key == "1002")
    assert (person.address, person.poststed) == ("Øvre Slottsgate 68", "TROMSØ")
    assert person.skjermet is False
    assert next(p for p in extract.persons if p.source_key == "1001").skjermet is True
    vedtak = next(b for b in extract.state_benefits if b.location == "VEDTAK:10010")
    assert vedtak.daily_rate == Decimal("442.71")
    assert vedtak.from_date == dt.date(2026, 4, 11)
    assert vedtak.justification == "Utmattelse, under utredning"
    hist = [h for h in extract.ident_history if h.source_key == "1002"]
    assert [h.ident for h in hist] == ["51867923490"]


def test_findings_are_reported_not_quarantined(night: Path, extract: Extract) -> None:
    kinds = Counter(f.kind for f in extract.findings)
    assert kinds["pre_reform_kommunenr"] > 0
    assert kinds["invalid_ident"] > 0
    quarantined = {(q.register, q.location) for q in extract.quarantine}
    read = {(p.register, p.location) for p in extract.persons}
    for finding in extract.findings:
        if finding.kind == "invalid_ident":
            assert (finding.register, finding.location) not in quarantined
    invalid = [f for f in extract.findings if f.kind == "invalid_ident"]
    assert all((f.register, f.location) in read for f in invalid)
    idents = {p.ident for p in extract.persons if p.ident}
    for finding in extract.findings:
        assert not any(i in finding.detail for i in idents), "a finding leaks an identity number"


def test_pre_reform_trondheim_number_is_named(sample: Path) -> None:
    extract = read_infotrygd(sample / "night1" / "infotrygd" / "infotrygd_20261120.dat")
    details = [f.detail for f in extract.findings if f.kind == "pre_reform_kommunenr"]
    assert "TKNR 1601 is now 5001" in details
