"""Issue 10 item 7 and the "uncertain matches" rule: look-alikes never share a card.

Hand-built record sets for each look-alike class the attack found on auto-linked cards:
(a) a valid hand-typed municipal number that is not one of the card's numbers, (b) a municipal
record carrying its own valid number of another birth date, (c) a record with no number that
fits two look-alike cards; and for the two-sided marker of a pair awaiting review. Then a small
simulated population with look-alikes turned up, checked against its answer key.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.linkage.inputs import load, mixed_birth_cards
from personkort import ident as idents
from personkort.ident import make_ident
from personkort.nightly import run_night
from personkort.reconcile import Reconciliation, reconcile
from personkort.records import Extract, PersonRecord, Protection, Register
from personkort.store import models as m
from personkort.store import open_engine, queries
from simulator import CorruptionModel, simulate

A, IT, K = Register.ARENA, Register.INFOTRYGD, Register.KOMMUNE
HOME = {"address": "Storgata 1", "postnr": "0150"}
FATHER, SON = dt.date(1950, 3, 3), dt.date(1980, 3, 3)


def _ident(born: dt.date, individual: int, *, dnr: bool = False) -> str:
    for n in range(individual, individual + 50):
        if value := make_ident(born, n, dnr=dnr, synthetic=True):
            return value
    raise AssertionError("no valid number")


def _rec(register: Register, key: str, given: str, surname: str, **kw: object) -> PersonRecord:
    return PersonRecord(register, key, f"{key}:loc", kw.pop("ident", None), surname, given, **kw)  # type: ignore[arg-type]


def _card(result: Reconciliation, key: str) -> int:
    return next(n for n, c in enumerate(result.clusters) if key in c)


def _alone(result: Reconciliation, key: str) -> bool:
    return result.clusters[_card(result, key)] == [key]


def _reviewed_with(result: Reconciliation, key: str) -> set[str]:
    return {r.candidate for r in result.reviews if r.record == key}


# -- (a) a valid number that is not one of the card's ---------------------------------------


def test_a_relatives_number_no_register_holds_keeps_the_record_off_the_card() -> None:
    """Kari's Flyt record carries a number no state register holds (her husband's, say) but
    states her birth date. Her card also holds a numberless Sosio record, through which names
    and address alone used to link it: the card then showed a stranger's number."""
    kari, husband = _ident(SON, 100), _ident(dt.date(1978, 6, 1), 300)
    result = reconcile(
        [
            _rec(A, "1", "Kari", "Nordmann", ident=kari, birth_date=SON, **HOME),
            _rec(K, "sosio:0301:1", "Kari", "Nordmann", **HOME),
            _rec(K, "flyt:0301:K-1", "Kari", "Nordmann", ident=husband, birth_date=SON, **HOME),
        ]
    )
    assert ["arena:1", "kommune:sosio:0301:1"] in result.clusters
    assert _alone(result, "kommune:flyt:0301:K-1")
    candidates = _reviewed_with(result, "kommune:flyt:0301:K-1")
    assert {_card(result, c) for c in candidates} == {_card(result, "arena:1")}


def test_a_relatives_number_a_register_holds_goes_to_review() -> None:
    """The mother's number on her son's record: not believed for the mother (the name differs),
    and not carried onto the son's card either."""
    mother = _ident(dt.date(1955, 1, 2), 200)
    result = reconcile(
        [
            _rec(A, "1", "Kari", "Nordmann", ident=mother, birth_date=dt.date(1955, 1, 2), **HOME),
            _rec(A, "2", "Ola", "Nordmann", ident=_ident(SON, 101), birth_date=SON, **HOME),
            _rec(K, "sosio:0301:9", "Ola", "Nordmann", ident=mother, **HOME),
        ]
    )
    assert _alone(result, "kommune:sosio:0301:9")
    assert _reviewed_with(result, "kommune:sosio:0301:9") == {"arena:2"}


def test_the_persons_other_kind_of_number_still_links() -> None:
    """The one exception: Infotrygd still has the D-nummer, the municipality the new
    fødselsnummer of the same birth date (one person's two numbers)."""
    dnr, fnr = _ident(SON, 300, dnr=True), _ident(SON, 300)
    result = reconcile(
        [
            _rec(IT, dnr, "AHMED", "ALI", ident=dnr, **HOME),
            _rec(K, "flyt:0301:K-2", "Ahmed", "Ali", ident=fnr, birth_date=SON, **HOME),
        ]
    )
    assert len(result.clusters) == 1


# -- (b) its own valid number, another birth date -------------------------------------------


def test_own_number_of_another_birth_date_stays_off_the_namesakes_card() -> None:
    """The son, known only to the municipality, with his own valid number; his father of one
    name has a card that holds a numberless record of another municipality's too, through
    which names and address alone used to link the son."""
    result = reconcile(
        [
            _rec(A, "1", "Per", "Hansen", ident=_ident(FATHER, 100), birth_date=FATHER, **HOME),
            _rec(K, "sosio:1103:3", "Per", "Hansen", **HOME),
            _rec(K, "sosio:0301:4", "Per", "Hansen", ident=_ident(SON, 102), **HOME),
        ]
    )
    assert ["arena:1", "kommune:sosio:1103:3"] in result.clusters
    assert _alone(result, "kommune:sosio:0301:4")


def test_a_mistyped_number_far_from_the_cards_is_someone_elses() -> None:
    """A son's own number mistyped: its date part is not the father's, and it is no typo of the
    father's number, so names and address do not put it on the father's card."""
    son = _ident(SON, 104)
    typo = son[:-2] + son[-1] + son[-2] if son[-1] != son[-2] else son[:-1] + "0"
    assert not isinstance(idents.try_parse(typo), idents.Ident)
    result = reconcile(
        [
            _rec(IT, _ident(FATHER, 100), "PER", "HANSEN", ident=_ident(FATHER, 100), **HOME),
            _rec(K, "sosio:0301:5", "Per", "Hansen", ident=typo, **HOME),
        ]
    )
    assert _alone(result, "kommune:sosio:0301:5")


def test_records_no_state_register_knows_never_make_a_card_of_two_birth_dates() -> None:
    """Stage 3: father and son known only to municipalities, a numberless record between them.
    Pair by pair each join scored high; together they made one card of two people."""
    result = reconcile(
        [
            _rec(K, "sosio:0301:1", "Ola", "Nordmann", **HOME),
            _rec(K, "sosio:1103:2", "Ola", "Nordmann", ident=_ident(SON, 100), **HOME),
            _rec(K, "flyt:4601:K-3", "Ola", "Nordmann", ident=_ident(FATHER, 100), **HOME),
        ]
    )
    assert not any(
        {"kommune:sosio:1103:2", "kommune:flyt:4601:K-3"} <= set(c) for c in result.clusters
    )
    # one person's D-nummer and fødselsnummer of one birth date are still one card
    dnr, fnr = _ident(SON, 300, dnr=True), _ident(SON, 300)
    result = reconcile(
        [
            _rec(K, "sosio:0301:1", "Ola", "Nordmann", ident=dnr, **HOME),
            _rec(K, "flyt:4601:K-3", "Ola", "Nordmann", ident=fnr, birth_date=SON, **HOME),
        ]
    )
    assert len(result.clusters) == 1


# -- (c) no number, two look-alike cards ------------------------------------------------------


def test_twins_of_near_names_make_a_record_uncertain() -> None:
    """Twins Jon and Jan: one letter apart, same birth date, same address. A Flyt record "Jon"
    scored 4 above "Jan" (the margin) and was linked; a typo could as well be Jan's."""
    result = reconcile(
        [
            _rec(A, "1", "Jon", "Nordmann", ident=_ident(SON, 100), birth_date=SON, **HOME),
            _rec(A, "2", "Jan", "Nordmann", ident=_ident(SON, 102), birth_date=SON, **HOME),
            _rec(K, "flyt:0301:K-4", "Jon", "Nordmann", birth_date=SON, **HOME),
        ]
    )
    assert _alone(result, "kommune:flyt:0301:K-4")
    assert _reviewed_with(result, "kommune:flyt:0301:K-4") == {"arena:1", "arena:2"}


def test_a_stated_birth_date_tells_father_and_son_apart() -> None:
    result = reconcile(
        [
            _rec(A, "1", "Per", "Hansen", ident=_ident(FATHER, 100), birth_date=FATHER, **HOME),
            _rec(A, "2", "Per", "Hansen", ident=_ident(SON, 101), birth_date=SON, **HOME),
            _rec(K, "flyt:0301:K-5", "Per", "Hansen", birth_date=SON, **HOME),
        ]
    )
    assert ["arena:2", "kommune:flyt:0301:K-5"] in result.clusters


def test_a_second_client_of_one_municipal_system_is_someone_else() -> None:
    """The father's card holds his Sosio client record; a second Sosio client of the same name
    at the same address (the son, with no number) is not the father."""
    father = _ident(FATHER, 100)
    records = [
        _rec(IT, father, "PER", "HANSEN", ident=father, **HOME),
        _rec(K, "sosio:0301:6", "Per", "Hansen", ident=father, **HOME),
        _rec(K, "sosio:0301:7", "Per", "Hansen", **HOME),
    ]
    result = reconcile(records)
    assert [f"infotrygd:{father}", "kommune:sosio:0301:6"] in result.clusters
    assert _alone(result, "kommune:sosio:0301:7")
    # two clients of one system typed with the father's number: neither is believed
    records[2] = _rec(K, "sosio:0301:7", "Per", "Hansen", ident=father, **HOME)
    result = reconcile(records)
    assert _alone(result, "kommune:sosio:0301:6")
    assert _alone(result, "kommune:sosio:0301:7")


# -- a surname from before a marriage: the one link below the upper threshold ---------------

WIFE = dt.date(1982, 8, 8)


def _maiden(*extra: PersonRecord, record: PersonRecord | None = None) -> Reconciliation:
    """Oddny Lien's Infotrygd card, and a Sosio record 'Oddny Brekke' at her address."""
    oddny = _ident(WIFE, 200)
    return reconcile(
        [
            _rec(IT, oddny, "ODDNY", "LIEN", ident=oddny, **HOME),
            record or _rec(K, "sosio:0301:1", "Oddny", "Brekke", **HOME),
            *extra,
        ]
    )


def test_a_maiden_name_links_only_when_nothing_else_fits() -> None:
    """The control: alone at the address, the record joins her card (engine._married_name)."""
    result = _maiden()
    assert not _alone(result, "kommune:sosio:0301:1")


@pytest.mark.parametrize(
    "extra",
    [
        # another Oddny at the address, of another surname (a lodger, a mother-in-law)
        [_rec(A, "2", "Oddny", "Hauge", ident=_ident(FATHER, 300), birth_date=FATHER, **HOME)],
        # an Oddny Brekke in the postcode: the record may be hers
        [_rec(A, "3", "Oddny", "Brekke", ident=_ident(SON, 301), birth_date=SON, postnr="0150")],
        # another client's record with her first name at the address, known to no state register
        [_rec(K, "flyt:0301:K-9", "Oddny", "Hauge", birth_date=FATHER, **HOME)],
        # her card already holds a client of the same Sosio system
        [_rec(K, "sosio:0301:2", "Oddny", "Lien", **HOME)],
    ],
    ids=["namesake_at_address", "maiden_namesake_in_postcode", "municipal_namesake", "system"],
)
def test_a_maiden_name_beside_anyone_else_it_could_be_goes_to_review(
    extra: list[PersonRecord],
) -> None:
    result = _maiden(*extra)
    assert _alone(result, "kommune:sosio:0301:1")


@pytest.mark.parametrize(
    "record",
    [
        # a relative's number (one a register holds) or a stranger's (one none holds)
        _rec(K, "sosio:0301:1", "Oddny", "Brekke", ident=_ident(FATHER, 100), **HOME),
        _rec(K, "sosio:0301:1", "Oddny", "Brekke", ident=_ident(SON, 400), **HOME),
        # a mistyped number
        _rec(K, "sosio:0301:1", "Oddny", "Brekke", ident="12345678901", **HOME),
        # given names that only overlap
        _rec(K, "sosio:0301:1", "Oddny Marie", "Brekke", **HOME),
        # the same street address in another town
        _rec(K, "sosio:0301:1", "Oddny", "Brekke", address=HOME["address"], postnr="5003"),
        # a stated birth date that is not hers
        _rec(K, "flyt:0301:K-1", "Oddny", "Brekke", birth_date=SON, **HOME),
    ],
    ids=["relatives_number", "strangers_number", "typo", "given", "other_town", "birth"],
)
def test_a_maiden_name_with_anything_that_could_be_someone_elses_stays_off(
    record: PersonRecord,
) -> None:
    key = f"{record.register}:{record.source_key}"
    result = _maiden(
        _rec(IT, _ident(FATHER, 100), "PER", "LIEN", ident=_ident(FATHER, 100)), record=record
    )
    assert _alone(result, key)


# -- the two-sided marker -----------------------------------------------------------------------


def _kode6_pair() -> list[PersonRecord]:
    """A kode 6 father, his plain look-alike son at the same address, and a numberless record
    that could be either."""
    return [
        _rec(
            A,
            "1",
            "Per",
            "Hansen",
            ident=_ident(FATHER, 100),
            birth_date=FATHER,
            protection=Protection.STRENGT_FORTROLIG,
            **HOME,
        ),
        _rec(
            A, "2", "Per", "Hansen", ident=_ident(SON, 101), birth_date=SON, skjermet=True, **HOME
        ),
        _rec(K, "sosio:0301:5", "Per", "Hansen", **HOME),
    ]


def test_every_card_of_a_pending_pair_carries_the_strictest_marker_of_both() -> None:
    """The look-alike's card shows the address that may be the protected person's."""
    result = reconcile(_kode6_pair())
    assert len(result.clusters) == 3 and len(result.reviews) == 2
    for key in ("arena:1", "arena:2", "kommune:sosio:0301:5"):
        n = _card(result, key)
        assert result.protection.get(n) is Protection.STRENGT_FORTROLIG, key
        assert n in result.skjermet, key


def test_a_protected_record_under_review_protects_its_candidates_card() -> None:
    """The protected side is the record: an Arena record with no number, kode 6, uncertain
    against a plain card."""
    result = reconcile(
        [
            _rec(IT, _ident(SON, 100), "KARI", "NORDMANN", ident=_ident(SON, 100), **HOME),
            _rec(
                A,
                "9",
                "Kari",
                "Hansen",  # a surname from before a marriage, or another Kari
                birth_date=SON,
                protection=Protection.FORTROLIG,
                address="Fjellveien 2",
                postnr="0150",
            ),
        ]
    )
    assert [r.record for r in result.reviews] == ["arena:9"]
    assert len(result.clusters) == 2
    assert all(result.protection.get(n) is Protection.FORTROLIG for n in (0, 1))


def test_the_store_marks_both_cards_pending_and_protected(store_url: str) -> None:
    engine = open_engine(store_url)
    outcome = run_night(
        engine, Extract(persons=_kode6_pair()), drop_dir="hand-built", fingerprint="lookalikes"
    )
    assert outcome.status == "published", outcome.message
    links = {k: card for _, k, card in queries.links(engine)}
    with engine.connect() as conn:
        cards = {
            row.card_id: row
            for row in conn.execute(sa.select(m.Card).where(m.Card.valid_to.is_(None)))
        }
    assert len(cards) == 3
    for key in ("1", "2", "sosio:0301:5"):
        card = cards[links[key]]
        assert card.pending_review, key
        assert card.protection == Protection.STRENGT_FORTROLIG.value, key
        assert card.skjermet, key


# -- a simulated population with look-alikes turned up ------------------------------------------

LOOKALIKES = CorruptionModel(
    junior=0.5, twins=0.3, ident_family=0.1, ident_typo=0.1, ident_empty=0.2, municipal_clients=0.3
)


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lookalikes")
    simulate(3_000, 3, 1, out, model=LOOKALIKES)
    return out / "night1"


def test_simulated_lookalikes_go_to_review_or_stay_apart(population: Path) -> None:
    data = load(population)
    result = reconcile(data.extract.persons, data.extract.ident_history)
    with (population / "truth" / "persons.csv").open(encoding="utf-8") as f:
        people = {r["person_key"]: r for r in csv.DictReader(f)}
    card_of = {k: n for n, c in enumerate(result.clusters) for k in c}
    reviewed = {r.record for r in result.reviews}
    state_numbers: dict[int, set[str]] = defaultdict(set)
    for key, numbers in data.numbers.items():
        if not key.startswith("kommune:"):
            state_numbers[card_of[key]].update(numbers)

    assert mixed_birth_cards(result.clusters, data) == 0

    # (a) a municipal record typed with a number that is not its person's own
    foreign = [
        k
        for k, numbers in data.numbers.items()
        if k.startswith("kommune:")
        and not set(numbers) & {people[data.truth[k]]["fnr"], people[data.truth[k]]["dnr"]}
    ]
    for k in foreign:
        n = card_of[k]
        assert result.clusters[n] == [k] or set(data.numbers[k]) <= state_numbers[n], k
    assert sum(k in reviewed for k in foreign) >= 5

    # (b) and (c): a numberless or own-numbered municipal record of a person with a look-alike
    # (same surname, first given name and address) who has a card of their own
    by_look: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for pk, p in people.items():
        by_look[(p["etternavn"], p["fornavn"].split()[0], p["adresse"])].add(pk)
    owners = defaultdict(set)
    for k, pk in data.truth.items():
        if not k.startswith("kommune:"):
            owners[pk].add(card_of[k])
    tested = 0
    for k, pk in data.truth.items():
        if not k.startswith("kommune:") or k in foreign:
            continue
        p = people[pk]
        twins = by_look[(p["etternavn"], p["fornavn"].split()[0], p["adresse"])] - {pk}
        others = {n for t in twins for n in owners.get(t, ())}
        if owners.get(pk) and others:
            tested += 1
            assert card_of[k] not in others, k
    assert tested >= 5
