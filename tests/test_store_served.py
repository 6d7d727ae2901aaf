"""The served-card cache: same answers as the store, fresh consents, a new night seen at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.card import Card
from personkort.consents import NewConsent
from personkort.feed import overlay
from personkort.nightly import run_night
from personkort.store import consents, feed, open_engine, queries
from personkort.store import models as m
from personkort.store.cards import load_card
from personkort.store.served import ServedCards

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def _night(engine: sa.Engine, drop: Path) -> None:
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))


def _served(engine: sa.Engine, ident: str) -> Card | None:
    """The card holding ``ident`` as the store has it (or, for a number only the feed knows,
    the card of the person it names), with the feed's facts laid over it as lookups do."""
    card_id = queries.card_for_ident(engine, ident)
    with engine.connect() as conn:
        night = queries.served_night(engine)
        assert night is not None
        card_id = card_id or feed.card_via_feed(conn, night, ident)
        card = load_card(engine, card_id) if card_id else None
        return overlay.apply(card, feed.facts_for(conn, card)) if card else None


def _idents(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.scalars(
                sa.select(m.SourceRecord.ident)
                .distinct()
                .where(m.SourceRecord.ident.is_not(None), m.SourceRecord.valid_to.is_(None))
            )
        )


def test_cached_and_uncached_reads_agree_with_the_store(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    cached, uncached = ServedCards(engine), ServedCards(engine, size=0)
    for _ in range(2):  # the second round is served from the cache
        for ident in _idents(engine):
            expected = _served(engine, ident)
            assert cached.by_ident(ident).card == expected
            assert uncached.by_ident(ident).card == expected
    assert cached.hits > 0 and uncached.hits == 0
    assert cached.by_ident("01010100000").card is None


def test_a_consent_registered_after_caching_counts_at_the_next_lookup(
    sample: Path, store_url: str
) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    cards = ServedCards(engine)
    ident = next(i for i in _idents(engine) if cards.by_ident(i).card is not None)
    assert cards.by_ident(ident).consents == []
    hits = cards.hits
    with engine.begin() as conn:
        given = consents.insert(
            conn,
            NewConsent(
                ident,
                "nav-oslo",
                "helse",
                NOW.date(),
                NOW.date() + dt.timedelta(days=30),
                "SKJEMA-1",
                "Z1",
                NOW,
            ),
        )
    found = cards.by_ident(ident)
    assert cards.hits > hits, "the card came from the cache"
    assert [c.id for c in found.consents] == [given.id]
    with engine.begin() as conn:
        consents.withdraw(conn, given.id, by="Z1", now=NOW)
    assert cards.by_ident(ident).consents[0].withdrawn_at is not None


def test_a_newly_published_night_is_served_at_the_next_lookup(sample: Path, store_url: str) -> None:
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    cards = ServedCards(engine)
    idents = [i for i in _idents(engine) if cards.by_ident(i).card is not None]
    assert {cards.by_ident(i).night for i in idents} == {1}
    _night(engine, sample / "night2")
    for ident in idents:
        found = cards.by_ident(ident)
        assert found.night == 2
        assert found.card == _served(engine, ident)


def test_the_cache_holds_as_many_cards_as_its_size(sample: Path, store_url: str) -> None:
    """The size counts cards, not entries: each card takes four (the number, the card, its
    numbers, its feed facts), and counted in entries a warm set as large as the size missed
    every time, which took the API bench's flat-out from 1,115/s to 463/s."""
    engine = open_engine(store_url)
    _night(engine, sample / "night1")
    probe = ServedCards(engine)
    found = [i for i in _idents(engine) if probe.by_ident(i).card is not None]
    per_card: dict[str, str] = {}
    for ident in found:  # one number per card: each lookup a card of its own
        per_card.setdefault(probe.by_ident(ident).card.card_id, ident)  # type: ignore[union-attr]
    idents = list(per_card.values())[:40]
    assert len(idents) == 40
    cards = ServedCards(engine, size=len(idents))
    for ident in idents:
        cards.by_ident(ident)
    misses = cards.misses
    for _ in range(3):
        for ident in idents:
            assert cards.by_ident(ident).card is not None
    assert cards.misses == misses, "a warm set the size of the cache was read again"
