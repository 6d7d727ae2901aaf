"""Reconciliation: the hard cases of the spec, one by one, and its invariants."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

import pytest

from adapters import read_drop
from personkort.ident import make_ident
from personkort.reconcile import Decision, pairwise_score, reconcile, record_key
from personkort.records import IdentHistory, PersonRecord, Protection, Register

A, IT, K = Register.ARENA, Register.INFOTRYGD, Register.KOMMUNE


def ident(born: dt.date, individual: int, *, dnr: bool = False) -> str:
    for n in range(individual, individual + 50):
        value = make_ident(born, n, dnr=dnr, synthetic=True)
        if value:
            return value
    raise AssertionError("no valid number")


def person(register: Register, key: str, given: str, surname: str, **kw: object) -> PersonRecord:
    return PersonRecord(register, key, f"{key}:loc", kw.pop("ident", None), surname, given, **kw)  # type: ignore[arg-type]


def clusters_of(result) -> set[frozenset[str]]:
    return {frozenset(c) for c in result.clusters}


BORN = dt.date(1980, 5, 17)
ADDRESS = {"address": "Storgata 1", "postnr": "0150"}


def test_equal_identity_numbers_across_state_registers_are_one_person() -> None:
    n = ident(BORN, 100)
    result = reconcile(
        [
            person(A, "1", "Kari", "Nordmann", ident=n, birth_date=BORN, **ADDRESS),
            person(IT, n, "KARI", "NORDMANN", ident=n),
        ]
    )
    assert clusters_of(result) == {frozenset({"arena:1", f"infotrygd:{n}"})}


def test_twins_stay_apart() -> None:
    a, b = ident(BORN, 100), ident(BORN, 102)
    result = reconcile(
        [
            person(A, "1", "Kari", "Nordmann", ident=a, birth_date=BORN, **ADDRESS),
            person(A, "2", "Ola", "Nordmann", ident=b, birth_date=BORN, **ADDRESS),
            person(IT, a, "KARI", "NORDMANN", ident=a, **ADDRESS),
            person(IT, b, "OLA", "NORDMANN", ident=b, **ADDRESS),
            person(K, "sosio:0301:1", "Ola", "Nordmann", **ADDRESS),
        ]
    )
    assert frozenset({"arena:1", f"infotrygd:{a}"}) in clusters_of(result)
    assert frozenset({"arena:2", f"infotrygd:{b}", "kommune:sosio:0301:1"}) in clusters_of(result)


def test_a_family_members_number_typed_by_hand_is_not_believed() -> None:
    mother, son = ident(dt.date(1960, 1, 2), 200), ident(BORN, 101)
    result = reconcile(
        [
            person(
                A, "1", "Kari", "Nordmann", ident=mother, birth_date=dt.date(1960, 1, 2), **ADDRESS
            ),
            person(A, "2", "Ola", "Nordmann", ident=son, birth_date=BORN, **ADDRESS),
            # The caseworker typed the mother's number on the son's social-service record.
            person(K, "sosio:0301:9", "Ola", "Nordmann", ident=mother, **ADDRESS),
        ]
    )
    # Not on the mother's card, and not auto-linked to the son's either: a card must not carry
    # a relative's number (issue 10, item 7). A steward decides.
    assert frozenset({"kommune:sosio:0301:9"}) in clusters_of(result)
    assert result.demoted_idents == ["kommune:sosio:0301:9"]
    assert [(r.record, r.candidate) for r in result.reviews] == [
        ("kommune:sosio:0301:9", "arena:2")
    ]


def test_d_number_joins_the_later_fodselsnummer() -> None:
    dnr, fnr = ident(BORN, 300, dnr=True), ident(BORN, 300)
    result = reconcile(
        [
            person(A, "1", "Ahmed", "Ali", ident=fnr, birth_date=BORN, **ADDRESS),
            person(IT, dnr, "AHMED", "ALI", ident=dnr, **ADDRESS),  # Infotrygd has not caught up
        ]
    )
    assert len(result.clusters) == 1


def test_namesakes_born_the_same_day_elsewhere_are_not_joined_by_d_number() -> None:
    dnr, fnr = ident(BORN, 300, dnr=True), ident(BORN, 302)
    result = reconcile(
        [
            person(A, "1", "Ahmed", "Ali", ident=fnr, birth_date=BORN, **ADDRESS),
            person(IT, dnr, "AHMED", "ALI", ident=dnr, address="Fjellveien 9", postnr="5003"),
        ]
    )
    assert len(result.clusters) == 2


def test_arena_identity_history_joins_the_old_number() -> None:
    old, new = ident(BORN, 300, dnr=True), ident(BORN, 300)
    result = reconcile(
        [
            person(A, "1", "Ahmed", "Ali", ident=new, birth_date=BORN),
            person(IT, old, "ALI AHMED", "X", ident=old),  # a name that would not match
        ],
        [IdentHistory(A, "1", "PERSON_IDENT_HIST:1#1", old, None, None)],
    )
    assert len(result.clusters) == 1


def test_father_and_son_of_one_name_make_an_unnumbered_record_uncertain() -> None:
    father, son = dt.date(1950, 3, 3), dt.date(1980, 3, 3)
    result = reconcile(
        [
            person(A, "1", "Per", "Hansen", ident=ident(father, 100), birth_date=father, **ADDRESS),
            person(A, "2", "Per", "Hansen", ident=ident(son, 101), birth_date=son, **ADDRESS),
            person(K, "sosio:0301:5", "Per", "Hansen", **ADDRESS),  # no number, no birth date
        ]
    )
    assert frozenset({"kommune:sosio:0301:5"}) in clusters_of(result)
    assert {r.candidate for r in result.reviews} == {"arena:1", "arena:2"}


def test_a_maiden_name_sosio_record_joins_the_only_card_that_fits() -> None:
    """Sosio states no birth date: a married woman's Sosio record under her surname from before
    the marriage, with no number, has only her given names and address to go by (score 6,
    review). When nothing else at the address or under that name could be her, it links (seeds
    2, 3, 4, 10 at 20,000 persons each lost one such pair)."""
    n = ident(BORN, 200)
    result = reconcile(
        [
            person(IT, n, "ODDNY", "LIEN", ident=n, **ADDRESS),
            person(K, "sosio:1103:1", "Oddny", "Brekke", **ADDRESS),
            person(A, "9", "Lise", "Berg", ident=ident(BORN, 300), birth_date=BORN),  # bystander
        ]
    )
    assert frozenset({f"infotrygd:{n}", "kommune:sosio:1103:1"}) in clusters_of(result)
    assert not result.reviews


def test_uncertain_record_of_a_protected_person_is_treated_as_protected() -> None:
    father, son = dt.date(1950, 3, 3), dt.date(1980, 3, 3)
    result = reconcile(
        [
            person(
                A,
                "1",
                "Per",
                "Hansen",
                ident=ident(father, 100),
                birth_date=father,
                protection=Protection.STRENGT_FORTROLIG,
                **ADDRESS,
            ),
            person(A, "2", "Per", "Hansen", ident=ident(son, 101), birth_date=son, **ADDRESS),
            person(K, "sosio:0301:5", "Per", "Hansen", **ADDRESS),
        ]
    )
    lone = next(n for n, c in enumerate(result.clusters) if c == ["kommune:sosio:0301:5"])
    assert result.protection[lone] is Protection.STRENGT_FORTROLIG


def test_strictest_marker_of_any_linked_record_wins() -> None:
    n = ident(BORN, 100)
    result = reconcile(
        [
            person(A, "1", "Kari", "Nordmann", ident=n, protection=Protection.FORTROLIG),
            person(IT, n, "KARI", "NORDMANN", ident=n, protection=Protection.STRENGT_FORTROLIG),
            person(K, "flyt:0301:K-1", "Kari", "Nordmann", ident=n),
        ]
    )
    assert len(result.clusters) == 1
    assert result.protection[0] is Protection.STRENGT_FORTROLIG


def test_different_valid_numbers_never_share_a_card() -> None:
    a, b = ident(BORN, 100), ident(BORN, 104)
    result = reconcile(
        [
            person(A, "1", "Kari", "Nordmann", ident=a, birth_date=BORN, **ADDRESS),
            person(A, "2", "Kari", "Nordmann", ident=b, birth_date=BORN, **ADDRESS),
        ]
    )
    assert len(result.clusters) == 2


def test_steward_rulings_bind() -> None:
    father, son = dt.date(1950, 3, 3), dt.date(1980, 3, 3)
    records = [
        person(A, "1", "Per", "Hansen", ident=ident(father, 100), birth_date=father, **ADDRESS),
        person(A, "2", "Per", "Hansen", ident=ident(son, 101), birth_date=son, **ADDRESS),
        person(K, "sosio:0301:5", "Per", "Hansen", **ADDRESS),
    ]
    same = reconcile(records, decisions=[Decision("kommune:sosio:0301:5", "arena:2", True)])
    assert frozenset({"arena:2", "kommune:sosio:0301:5"}) in clusters_of(same)
    assert not same.reviews
    apart = reconcile(records, decisions=[Decision("kommune:sosio:0301:5", "arena:2", False)])
    assert frozenset({"arena:1", "kommune:sosio:0301:5"}) in clusters_of(apart)


def test_a_mistyped_number_still_finds_its_person() -> None:
    n = ident(BORN, 100)
    typo = n[:-2] + n[-1] + n[-2] if n[-1] != n[-2] else n[:-1] + str((int(n[-1]) + 1) % 10)
    result = reconcile(
        [
            person(A, "1", "Kari", "Nordmann", ident=n, birth_date=BORN, **ADDRESS),
            person(K, "flyt:0301:K-7", "Kari", "Nordmann", ident=typo, birth_date=BORN),
        ]
    )
    assert len(result.clusters) == 1


@pytest.mark.parametrize("night", ["night1", "night2"])
def test_sample_nights_against_the_answer_key(sample: Path, night: str) -> None:
    extract = read_drop(sample / night)
    result = reconcile(extract.persons, extract.ident_history)
    with (sample / night / "truth" / "links.csv").open(encoding="utf-8") as f:
        truth = {
            record_key(r["register"], r["source_key"]): r["person_key"] for r in csv.DictReader(f)
        }
    score = pairwise_score(result.clusters, truth)
    assert score.precision == 1.0
    assert score.recall >= 0.99
    assert len(result.reviews) / len(extract.persons) < 0.005 + 1 / len(extract.persons)
    persons = {}
    with (sample / night / "truth" / "persons.csv").open(encoding="utf-8") as f:
        persons = {r["person_key"]: r for r in csv.DictReader(f)}
    for n, cluster in enumerate(result.clusters):
        # Only a state register can know a marker: a person known to municipal systems alone
        # cannot be found protected (the answer key marks some such people all the same).
        knowable = [k for k in cluster if not k.startswith("kommune:")]
        wanted = {persons[truth[k]]["adressebeskyttelse"] for k in knowable} - {""}
        if "STRENGT_FORTROLIG" in wanted:
            assert result.protection.get(n) is Protection.STRENGT_FORTROLIG, cluster


def test_order_of_records_does_not_matter(sample: Path) -> None:
    extract = read_drop(sample / "night2")
    baseline = clusters_of(reconcile(extract.persons, extract.ident_history))
    shuffled = list(extract.persons)
    for seed in range(3):
        random.Random(seed).shuffle(shuffled)
        assert clusters_of(reconcile(shuffled, extract.ident_history)) == baseline
