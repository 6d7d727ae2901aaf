"""Loading a served card: every value with its provenance, conflicts shown, not overwritten."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from personkort.nightly import run_night
from personkort.store import models as m
from personkort.store import open_engine, pipelined, queries
from personkort.store.cards import load_card


def _served(sample: Path, store_url: str) -> sa.Engine:
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    return engine


def test_card_found_by_an_earlier_identity_number(sample: Path, store_url: str) -> None:
    engine = _served(sample, store_url)
    # Arena PERSON_IDENT_HIST: PERSON 1002 was 51867923490 before 11867913868.
    card_id = queries.card_for_ident(engine, "51867923490")
    assert card_id is not None
    assert queries.card_for_ident(engine, "11867913868") == card_id
    card = load_card(engine, card_id)
    assert card is not None
    # Infotrygd still holds her under the D-number: both numbers are on the one card.
    assert {"51867923490", "11867913868"} <= card.all_idents
    assert "51867923490" in {s.value for s in card.idents if s.source.register == "infotrygd"}
    assert {s.register for s in card.sources} >= {"arena"}
    assert all(s.night == 1 for s in card.sources)
    assert card.state_benefits and card.state_benefits[0].source.location.startswith("VEDTAK:")


def test_conflicting_values_are_all_kept_with_their_sources(sample: Path, store_url: str) -> None:
    engine = _served(sample, store_url)
    with engine.connect() as conn:
        multi = conn.scalars(
            sa.select(m.Card.card_id).where(m.Card.valid_to.is_(None), m.Card.records > 1)
        ).all()
    conflicted = [c for c in (load_card(engine, i) for i in multi) if c and c.conflicts]
    assert conflicted, "the sample has people the registers disagree about"
    for card in conflicted:
        for name in card.conflicts:
            values = card.fields[name]
            assert len({str(v.value).casefold() for v in values}) > 1
            assert all(v.source.register and v.source.location for v in values)


def test_pre_reform_municipality_is_not_a_conflict(sample: Path, store_url: str) -> None:
    engine = _served(sample, store_url)
    with engine.connect() as conn:
        multi = conn.scalars(
            sa.select(m.Card.card_id).where(m.Card.valid_to.is_(None), m.Card.records > 1)
        ).all()
    cards = [load_card(engine, i) for i in multi]
    pre_reform = [
        c
        for c in cards
        if c and {"1601", "5001"} <= {v.value for v in c.fields.get("kommunenr", [])}
    ]
    assert pre_reform
    assert all("kommunenr" not in c.conflicts for c in pre_reform)


def test_unknown_card_is_none(sample: Path, store_url: str) -> None:
    engine = _served(sample, store_url)
    assert load_card(engine, "pk-0000000000000000") is None
    assert queries.card_for_ident(engine, "15928011418") is None


def test_every_served_card_reads_the_same_in_one_round_trip(
    sample: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a card's six statements go through the driver in one pipeline
    (store/pipelined.py); each card must equal the one SQLAlchemy reads statement by statement,
    dates, amounts and decrypted fields included. On SQLite both are SQLAlchemy's."""
    engine = _served(sample, store_url)
    with engine.connect() as conn:
        ids = conn.scalars(sa.select(m.Card.card_id).where(m.Card.valid_to.is_(None))).all()
    pipelined_cards = [load_card(engine, i) for i in ids]
    monkeypatch.setattr(pipelined, "on_driver", lambda conn: False)
    statement_cards = [load_card(engine, i) for i in ids]
    assert pipelined_cards == statement_cards
    benefits = [b for c in pipelined_cards if c for b in c.state_benefits]
    assert any(isinstance(b.daily_rate, Decimal) for b in benefits)
    assert all(isinstance(b.from_date, dt.date) for b in benefits)
    assert any(s.free_text for c in pipelined_cards if c for s in c.municipal_services)
    assert load_card(engine, "no-such-card") is None


def test_a_driver_error_in_the_pipeline_is_a_store_error(store_url: str) -> None:
    """What a lookup answers 503 for: SQLAlchemy's error, on either store."""
    engine = open_engine(store_url)
    broken = sa.select(sa.literal_column("1")).select_from(sa.table("no_such_table"))
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        pipelined.read_all(conn, [(broken, {})])
