"""The quarantine repository: a night's quarantined raw lines, sealed at rest.

A quarantined line is the record as the register delivered it: diagnoses, the social worker's
free text, addresses and identity numbers. So ``raw`` is AES-GCM sealed like the card's
sensitive fields, bound to its night, register and location, so that a sealed line copied to
another row (or another night) does not decrypt. ``register``, ``location`` and ``reason`` stay
in clear: stewards filter by them, and the adapters keep personal data out of them.

Rows written before sealing was on still read (``KeyRing.decrypt`` passes plain text through).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.records import Quarantined
from personkort.store import models as m
from personkort.store.crypto import KeyRing, context, key_ring

TABLE = "quarantine"
COLUMN = "raw"


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """One quarantined record as a steward sees it; ``raw`` only when asked for (stewards)."""

    register: str
    location: str
    reason: str
    raw: str | None = None


def raw_context(night_id: int, register: str, location: str) -> str:
    """The associated data that binds a sealed raw line to its row."""
    return context(TABLE, COLUMN, f"{night_id}:{register}:{location}")


def quarantine_insert_rows(
    night_id: int, quarantine: Iterable[Quarantined], keys: KeyRing
) -> list[dict[str, Any]]:
    """The rows a night writes to ``quarantine``, each raw line sealed to its place."""
    return [
        {
            "night_id": night_id,
            "register": q.register.value,
            "location": q.location,
            "reason": q.reason,
            "raw": keys.encrypt(q.raw, raw_context(night_id, q.register.value, q.location)),
        }
        for q in quarantine
    ]


def quarantine_rows(
    engine: sa.Engine,
    night_id: int | None,
    *,
    limit: int,
    offset: int,
    with_raw: bool,
    keys: KeyRing | None = None,
) -> list[QuarantineItem]:
    """A page of a night's quarantine (the served night when ``night_id`` is None; nothing if
    no night is served), in the order it was written. Raw lines are read and decrypted only
    when ``with_raw``: the caller decides who may see them (stewards), never this module."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    q = m.QuarantineRow
    columns = [q.register, q.location, q.reason]
    if with_raw:
        columns.append(q.raw)
    with engine.connect() as conn:
        if night_id is None:
            night_id = conn.scalar(sa.select(m.Publication.night_id).where(m.Publication.id == 1))
            if night_id is None:
                return []
        rows = conn.execute(
            sa.select(*columns)
            .where(q.night_id == night_id)
            .order_by(q.id)
            .limit(limit)
            .offset(offset)
        ).all()
    if not with_raw:
        return [QuarantineItem(r.register, r.location, r.reason) for r in rows]
    ring = keys or key_ring()
    return [
        QuarantineItem(
            r.register,
            r.location,
            r.reason,
            ring.decrypt(r.raw, raw_context(night_id, r.register, r.location)),
        )
        for r in rows
    ]


def iter_quarantine(
    engine: sa.Engine,
    night_id: int | None,
    *,
    with_raw: bool,
    keys: KeyRing | None = None,
    page: int = 5000,
) -> Iterator[QuarantineItem]:
    """Every quarantined record of a night, a page at a time (for exports)."""
    if night_id is None:
        with engine.connect() as conn:
            night_id = conn.scalar(sa.select(m.Publication.night_id).where(m.Publication.id == 1))
        if night_id is None:
            return
    offset = 0
    while True:
        rows = quarantine_rows(
            engine, night_id, limit=page, offset=offset, with_raw=with_raw, keys=keys
        )
        yield from rows
        if len(rows) < page:
            return
        offset += page


def rekey_quarantine(engine: sa.Engine, ring: KeyRing, batch: int = 1000) -> int:
    """Re-seal every quarantined raw line not under the active key (plain ones included);
    returns how many. For ``store.rekey``: a key can leave the ring only after this ran."""
    q = m.QuarantineRow
    changed = 0
    last_id = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                sa.select(q.id, q.night_id, q.register, q.location, q.raw)
                .where(q.id > last_id)
                .order_by(q.id)
                .limit(batch)
            ).all()
            if not rows:
                return changed
            for row in rows:
                if row.raw is None or ring.key_id_of(row.raw) == ring.active:
                    continue
                where = raw_context(row.night_id, row.register, row.location)
                sealed = ring.encrypt(ring.decrypt(row.raw, where), where)
                conn.execute(sa.update(q).where(q.id == row.id).values(raw=sealed))
                changed += 1
            last_id = rows[-1].id
