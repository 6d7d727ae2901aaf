"""The feed as evidence for reconciliation: a D-nummer one register still holds and the
fødselsnummer another holds already are one person, one card, when the feed says so, on a
full and on an incremental night alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from personkort.feed.records import FeedIdent, FeedPerson, FeedSnapshot, Gradering
from personkort.nightly import run_night
from personkort.records import Extract, PersonRecord, Register, SourceCount
from personkort.store import models as m
from personkort.store import open_engine, queries

BORN = dt.date(1947, 8, 5)


def _number(*, dnr: bool, start: int) -> str:
    from personkort.ident import make_ident

    return next(n for i in range(start, 500) if (n := make_ident(BORN, i, dnr=dnr, synthetic=True)))


FNR, DNR = _number(dnr=False, start=100), _number(dnr=True, start=200)
OTHER = "01017012345"


def _records(*, moved: bool = True) -> list[PersonRecord]:
    common = {"surname": "Andreassen", "given_names": "Nora", "birth_date": BORN}
    return [
        PersonRecord(
            Register.ARENA, "1", "PERSON:1", FNR, address="Storgata 1", postnr="0150", **common
        ),
        # Infotrygd has not heard of the new number, and still has the old address.
        PersonRecord(
            Register.INFOTRYGD,
            DNR,
            "line:1",
            DNR,
            address="Fjordveien 9" if moved else "Storgata 1",
            postnr="5003" if moved else "0150",
            **common,
        ),
    ]


def _snapshot(day: int, *, numbers: bool = True) -> FeedSnapshot:
    idents = [FeedIdent(FNR, "FNR", True)]
    if numbers:
        idents.append(FeedIdent(DNR, "DNR", False))
    person = FeedPerson(
        "folkeregister:line:1",
        tuple(idents),
        "Nora",
        None,
        "Andreassen",
        BORN,
        Gradering.UGRADERT,
        None,
        (),
        None,
    )
    as_of = dt.datetime(2026, 11, day, 1, 10, tzinfo=dt.UTC)
    return FeedSnapshot(
        f"folkeregister_202611{day}.jsonl", as_of, [person], {FNR: f"d{day}{numbers}"}
    )


def _others() -> list[PersonRecord]:
    """Thirty other people, so that one merge is no drop the card gate minds."""
    from personkort.ident import make_ident

    out = []
    for n in range(30):
        born = dt.date(1960, 1, 1) + dt.timedelta(days=37 * n)
        number = next(x for i in range(100, 500) if (x := make_ident(born, i, synthetic=True)))
        out.append(
            PersonRecord(
                Register.ARENA,
                f"9{n}",
                f"PERSON:9{n}",
                number,
                f"Etternavn{n}",
                "Kari",
                birth_date=born,
            )
        )
    return out


def _extract(snapshot: FeedSnapshot | None) -> Extract:
    records = [*_records(), *_others()]
    counts = [
        SourceCount(Register.ARENA, "arena", 1, 1),
        SourceCount(Register.INFOTRYGD, "it", 1, 1),
    ]
    return Extract(persons=records, counts=counts, feed=snapshot)


def _cards(engine: sa.Engine) -> set[str]:
    return {queries.card_for_ident(engine, FNR), queries.card_for_ident(engine, DNR)}


def test_without_the_feed_two_cards_with_it_one(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/without.sqlite")
    run_night(engine, _extract(None), drop_dir="d1", fingerprint="a")
    assert len(_cards(engine)) == 2  # the engine cannot tell: moved, no history
    engine = open_engine(f"sqlite:///{tmp_path}/with.sqlite")
    run_night(engine, _extract(_snapshot(20)), drop_dir="d1", fingerprint="a")
    (card,) = _cards(engine)
    assert card is not None


def test_an_incremental_night_joins_them_when_the_feed_learns_of_the_change(
    store_url: str,
) -> None:
    engine = open_engine(store_url)
    first = run_night(
        engine, _extract(_snapshot(20, numbers=False)), drop_dir="d1", fingerprint="a"
    )
    assert first.status == "published" and len(_cards(engine)) == 2
    second = run_night(engine, _extract(_snapshot(21)), drop_dir="d2", fingerprint="b")
    assert second.status == "published", second.message
    assert second.counts["reconciled"] == "incremental"
    assert len(_cards(engine)) == 1
    # a third night with nothing changed keeps them together, and a night without the feed too
    third = _extract(None)
    third.feed_refusal = None
    run_night(engine, third, drop_dir="d3", fingerprint="c")
    assert len(_cards(engine)) == 1
    with engine.connect() as conn:
        history = conn.scalar(sa.select(sa.func.count()).select_from(m.IdentHistoryRow))
    assert history == 0  # the feed's numbers are evidence, not a register's history rows
    engine.dispose()
