"""Adapters and simulator round-trip: simulated registers read back to the simulator's truth."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from adapters import read_drop
from personkort.records import Extract, Register
from tests.conftest import read_csv


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator import simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(4_000, 7, 2, out)
    return out


@pytest.fixture(scope="module", params=["night1", "night2"])
def read_back(request: pytest.FixtureRequest, simulated: Path) -> tuple[Path, Extract]:
    night = simulated / request.param
    return night, read_drop(night)


def test_simulated_person_records_read_back_to_the_links(read_back: tuple[Path, Extract]) -> None:
    night, extract = read_back
    assert not extract.refusals
    links = {(r["register"], r["source_key"]) for r in read_csv(night / "truth" / "links.csv")}
    read = Counter((p.register.value, p.source_key) for p in extract.persons)
    assert set(read) == links
    assert max(read.values()) == 1


def test_simulated_bad_records_are_all_quarantined(read_back: tuple[Path, Extract]) -> None:
    night, extract = read_back
    bad = read_csv(night / "truth" / "bad.csv")
    assert bad
    quarantined = {(q.register.value, q.location) for q in extract.quarantine}
    missing = [r for r in bad if (r["register"], r["location"]) not in quarantined]
    assert missing == []


def test_nothing_else_is_quarantined_but_dependants(read_back: tuple[Path, Extract]) -> None:
    """Every quarantined record is in the answer key, or hangs off a record that is."""
    night, extract = read_back
    bad = {(r["register"], r["location"]) for r in read_csv(night / "truth" / "bad.csv")}
    extra = [
        q
        for q in extract.quarantine
        if (q.register.value, q.location) not in bad and "is quarantined" not in q.reason
    ]
    assert extra == []


def test_simulated_counts_conserve(read_back: tuple[Path, Extract]) -> None:
    _, extract = read_back
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined, c
    assert {c.register for c in extract.counts} == set(Register)


def test_simulated_truth_values_come_back(read_back: tuple[Path, Extract]) -> None:
    """Arena names, birth dates and protection markers read back exactly as the truth has them
    (Arena is the register the corruption model leaves names intact in, apart from FORNAVN
    holding the middle name)."""
    night, extract = read_back
    links = {
        (r["register"], r["source_key"]): r["person_key"]
        for r in read_csv(night / "truth" / "links.csv")
    }
    persons = {p["person_key"]: p for p in read_csv(night / "truth" / "persons.csv")}
    arena = [p for p in extract.persons if p.register is Register.ARENA]
    assert arena
    same_surname = sum(
        p.surname == persons[links[("arena", p.source_key)]]["etternavn"] for p in arena
    )
    assert same_surname / len(arena) > 0.95
    born = [p for p in arena if p.birth_date]
    same_birth = sum(
        p.birth_date.isoformat() == persons[links[("arena", p.source_key)]]["fodselsdato"]
        for p in born
    )
    assert same_birth / len(born) > 0.99
