"""The review queue's repository: the two records of a pair, stewards' rulings, and the lock
that lets only one steward settle a pair at a time.

A ruling is a ``steward_decision`` row; the newest one on a pair wins from the next night on
(``queries.decisions``). A steward who decides from a page says which ruling they saw (its id,
or none); ``lock_pair`` serialises deciders of one pair, so that check and the insert after it
see the same state on PostgreSQL (advisory lock) and SQLite (the write lock of ``BEGIN
IMMEDIATE``, which the caller's ``begin_write`` holds already).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from personkort.store import models as m
from personkort.store.nights import visible
from personkort.store.queries import aware

PAIR_LOCK_SPACE = 0x706B72  # "pkr": the two-key advisory lock space of review pairs


@dataclass(frozen=True, slots=True)
class Ruling:
    """One steward's ruling on a pair, as stored."""

    id: int
    record_a: str
    record_b: str
    same: bool
    steward: str
    reason: str | None
    decided_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RecordView:
    """A source record as a steward compares it: who it says the person is, and where from."""

    record_key: str
    register: str
    source_key: str
    location: str
    ident: str | None
    ident_type: str | None
    earlier_idents: tuple[str, ...]
    surname: str
    given_names: str
    middle_name: str | None
    birth_date: dt.date | None
    death_date: dt.date | None
    address: str | None
    postnr: str | None
    poststed: str | None
    kommunenr: str | None
    card_id: str | None = None


def pair_key(a: str, b: str) -> tuple[str, str]:
    """A pair in one order, whichever way round it was named."""
    return (a, b) if a <= b else (b, a)


def lock_pair(conn: sa.Connection, a: str, b: str) -> None:
    """Hold the pair's lock until the caller's transaction ends (PostgreSQL); on SQLite the
    caller's ``BEGIN IMMEDIATE`` already serialises every writer."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256("\x00".join(pair_key(a, b)).encode()).digest()
    key = int.from_bytes(digest[:4], "big", signed=True)
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {"space": PAIR_LOCK_SPACE, "key": key},
    )


def _ruling(row: sa.Row) -> Ruling:  # type: ignore[type-arg]
    return Ruling(
        id=row.id,
        record_a=row.record_a,
        record_b=row.record_b,
        same=row.same,
        steward=row.steward,
        reason=row.reason,
        decided_at=aware(row.decided_at),  # type: ignore[arg-type]
    )


_COLUMNS = (
    m.DecisionRow.id,
    m.DecisionRow.record_a,
    m.DecisionRow.record_b,
    m.DecisionRow.same,
    m.DecisionRow.steward,
    m.DecisionRow.reason,
    m.DecisionRow.decided_at,
)


def latest_ruling(conn: sa.Connection, a: str, b: str) -> Ruling | None:
    """The newest ruling on the pair, named in either order."""
    d = m.DecisionRow
    row = conn.execute(
        sa.select(*_COLUMNS)
        .where(
            sa.or_(
                sa.and_(d.record_a == a, d.record_b == b), sa.and_(d.record_a == b, d.record_b == a)
            )
        )
        .order_by(d.id.desc())
        .limit(1)
    ).first()
    return _ruling(row) if row else None


def latest_rulings(
    engine: sa.Engine, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Ruling]:
    """The newest ruling on each of these pairs (keyed by ``pair_key``), where there is one."""
    wanted = {pair_key(a, b) for a, b in pairs}
    if not wanted:
        return {}
    keys = sorted({k for pair in wanted for k in pair})
    d = m.DecisionRow
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*_COLUMNS).where(d.record_a.in_(keys), d.record_b.in_(keys)).order_by(d.id)
        ).all()
    found: dict[tuple[str, str], Ruling] = {}
    for row in rows:
        key = pair_key(row.record_a, row.record_b)
        if key in wanted:
            found[key] = _ruling(row)
    return found


def recent_rulings(engine: sa.Engine, limit: int) -> list[Ruling]:
    """The newest rulings, newest first."""
    d = m.DecisionRow
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_COLUMNS).order_by(d.id.desc()).limit(limit)).all()
    return [_ruling(r) for r in rows]


def insert_ruling(
    conn: sa.Connection,
    a: str,
    b: str,
    same: bool,
    steward: str,
    reason: str | None,
    at: dt.datetime,
) -> int:
    """Store a ruling on the caller's transaction; its id is what later deciders must have
    seen."""
    return int(
        conn.execute(
            sa.insert(m.DecisionRow)
            .values(
                record_a=a, record_b=b, same=same, steward=steward, reason=reason, decided_at=at
            )
            .returning(m.DecisionRow.id)
        ).scalar_one()
    )


def review_item(engine: sa.Engine, review_id: int) -> sa.Row | None:  # type: ignore[type-arg]
    """One queued pair by its id, whichever night queued it."""
    with engine.connect() as conn:
        return conn.execute(sa.select(m.ReviewRow).where(m.ReviewRow.id == review_id)).first()


def records(engine: sa.Engine, night: int, keys: Iterable[str]) -> dict[str, RecordView]:
    """The source records as night ``night`` holds them, with their earlier numbers and the
    card each is on."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    s, h, link = m.SourceRecord, m.IdentHistoryRow, m.CardLink
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*s.__table__.columns).where(s.record_key.in_(wanted), visible(s, night))
        ).all()
        history: dict[str, list[str]] = {}
        for key, ident in conn.execute(
            sa.select(h.record_key, h.ident)
            .where(h.record_key.in_(wanted), visible(h, night))
            .order_by(h.id)
        ):
            history.setdefault(key, []).append(ident)
        cards = dict(
            conn.execute(
                sa.select(link.record_key, link.card_id).where(
                    link.record_key.in_(wanted), visible(link, night)
                )
            ).all()
        )
    out = {}
    for r in rows:
        out[r.record_key] = RecordView(
            record_key=r.record_key,
            register=r.register,
            source_key=r.source_key,
            location=r.location,
            ident=r.ident,
            ident_type=r.ident_type,
            earlier_idents=tuple(i for i in history.get(r.record_key, ()) if i != r.ident),
            surname=r.surname,
            given_names=r.given_names,
            middle_name=r.middle_name,
            birth_date=r.birth_date,
            death_date=r.death_date,
            address=r.address,
            postnr=r.postnr,
            poststed=r.poststed,
            kommunenr=r.kommunenr,
            card_id=cards.get(r.record_key),
        )
    return out


def cards_of(engine: sa.Engine, night: int, keys: Iterable[str]) -> dict[str, str]:
    """The card each record is on in night ``night`` (records no longer delivered: absent)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    link = m.CardLink
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.select(link.record_key, link.card_id).where(
                    link.record_key.in_(wanted), visible(link, night)
                )
            ).all()
        )


def night_started(engine: sa.Engine, night: int) -> dt.datetime | None:
    """When a night began: a ruling made before it binds it."""
    with engine.connect() as conn:
        value = conn.scalar(sa.select(m.Night.started_at).where(m.Night.id == night))
    return aware(value) if value is not None else None  # type: ignore[return-value]
