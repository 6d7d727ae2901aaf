"""Reading the served night: links, quarantine, reviews, decisions, nights."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa

from personkort.reconcile.engine import Decision
from personkort.store import models as m
from personkort.store.nights import published_night, visible


def served_night(engine: sa.Engine) -> int | None:
    with engine.connect() as conn:
        return published_night(conn)


def links(engine: sa.Engine) -> Iterator[tuple[str, str, str]]:
    """(register, source_key, card_id) for every source record on a served card."""
    with engine.connect() as conn:
        night = published_night(conn)
        if night is None:
            return
        query = (
            sa.select(m.SourceRecord.register, m.SourceRecord.source_key, m.CardLink.card_id)
            .join(m.CardLink, m.CardLink.record_key == m.SourceRecord.record_key)
            .where(visible(m.SourceRecord, night), visible(m.CardLink, night))
            .order_by(m.SourceRecord.register, m.SourceRecord.source_key)
        )
        yield from (tuple(row) for row in conn.execute(query))


def quarantine(engine: sa.Engine, night: int | None = None) -> Iterator[tuple[str, str, str]]:
    """(register, location, reason) of a night's quarantine; the served night by default."""
    with engine.connect() as conn:
        night = night if night is not None else published_night(conn)
        query = (
            sa.select(m.QuarantineRow.register, m.QuarantineRow.location, m.QuarantineRow.reason)
            .where(m.QuarantineRow.night_id == night)
            .order_by(m.QuarantineRow.id)
        )
        yield from (tuple(row) for row in conn.execute(query))


def card_for_ident(engine: sa.Engine, ident: str) -> str | None:
    """The served card holding this identity number, current or earlier, if any."""
    with engine.connect() as conn:
        night = published_night(conn)
        return None if night is None else card_id_for_ident(conn, night, ident)


def _card_ids_holding() -> sa.Select[tuple[str]]:
    """The cards of a night holding an identity number, current or earlier: built once."""
    night = sa.bindparam("night", type_=sa.Integer)
    ident = sa.bindparam("ident", type_=sa.String)
    keys = sa.union(
        sa.select(m.SourceRecord.record_key).where(
            m.SourceRecord.ident == ident, visible(m.SourceRecord, night)
        ),
        sa.select(m.IdentHistoryRow.record_key).where(
            m.IdentHistoryRow.ident == ident, visible(m.IdentHistoryRow, night)
        ),
    ).subquery()
    return (
        sa.select(m.CardLink.card_id)
        .distinct()
        .where(m.CardLink.record_key.in_(sa.select(keys.c.record_key)))
        .where(visible(m.CardLink, night))
    )


_CARD_IDS_HOLDING = _card_ids_holding()


def card_id_for_ident(conn: sa.Connection, night: int, ident: str) -> str | None:
    """The card of night ``night`` holding this identity number, current or earlier; None if
    none, or if the number is on more than one card (never guess between two people)."""
    cards = conn.scalars(_CARD_IDS_HOLDING, {"night": night, "ident": ident}).all()
    return cards[0] if len(cards) == 1 else None


def decisions(conn: sa.Connection) -> list[Decision]:
    rows = conn.execute(
        sa.select(m.DecisionRow.record_a, m.DecisionRow.record_b, m.DecisionRow.same).order_by(
            m.DecisionRow.id
        )
    )
    latest: dict[tuple[str, str], bool] = {}
    for a, b, same in rows:
        latest[tuple(sorted((a, b)))] = same  # type: ignore[index]
    return [Decision(a, b, same) for (a, b), same in latest.items()]


def add_decision(
    conn: sa.Connection,
    a: str,
    b: str,
    same: bool,
    steward: str,
    reason: str | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Record a steward's ruling on the caller's transaction; the newest ruling on a pair wins
    from the next night on."""
    conn.execute(
        sa.insert(m.DecisionRow).values(
            record_a=a,
            record_b=b,
            same=same,
            steward=steward,
            reason=reason,
            decided_at=at or dt.datetime.now(dt.UTC),
        )
    )


def reviews(engine: sa.Engine, night: int | None) -> list[sa.Row]:
    """A night's uncertain pairs, in the order they were queued."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(m.ReviewRow).where(m.ReviewRow.night_id == night).order_by(m.ReviewRow.id)
            ).all()
        )


def nights(engine: sa.Engine) -> list[dict[str, object]]:
    """Every night, oldest first, with its status, counts and report."""
    with engine.connect() as conn:
        table = m.Night.__table__
        rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings()
        return [{k: aware(v) for k, v in row.items()} for row in rows]


def aware(value: object) -> object:
    """SQLite hands back naive datetimes; everything the store writes is UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def successors(engine: sa.Engine, card_id: str) -> list[str]:
    """The current card ids a merged-away or split card id now lives on (following chains)."""
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(m.CardEvent.old_ids, m.CardEvent.new_ids).order_by(m.CardEvent.id)
        ).all()
    current, seen = {card_id}, set()
    changed = True
    while changed:
        changed = False
        for olds, news in events:
            hit = current & set(olds)
            if hit and not hit <= seen:
                seen |= hit
                current = (current - hit) | set(news)
                changed = True
    return sorted(current - {card_id}) if card_id in seen else []
