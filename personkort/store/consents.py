"""The consent repository: every statement that reads or writes a consent."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from personkort.consents import ConsentRecord, NewConsent
from personkort.store import models as m
from personkort.store.queries import aware


def insert(conn: sa.Connection, consent: NewConsent) -> ConsentRecord:
    """Store a new consent on the caller's transaction."""
    new_id = conn.execute(
        sa.insert(m.ConsentRow).returning(m.ConsentRow.id), dataclasses.asdict(consent)
    ).scalar_one()
    record = get(conn, new_id)
    assert record is not None
    return record


def get(conn: sa.Connection, consent_id: int) -> ConsentRecord | None:
    row = conn.execute(sa.select(m.ConsentRow).where(m.ConsentRow.id == consent_id)).first()
    return record_of(row) if row else None


def withdraw(
    conn: sa.Connection, consent_id: int, *, by: str, now: dt.datetime
) -> ConsentRecord | None:
    """Withdraw a consent on the caller's transaction (a second withdrawal changes nothing)."""
    conn.execute(
        sa.update(m.ConsentRow)
        .where(m.ConsentRow.id == consent_id, m.ConsentRow.withdrawn_at.is_(None))
        .values(withdrawn_at=now, withdrawn_by=by)
    )
    return get(conn, consent_id)


def for_idents(conn: sa.Connection, idents: set[str]) -> list[ConsentRecord]:
    """Every consent given under any of these identity numbers."""
    if not idents:
        return []
    rows = conn.execute(
        sa.select(m.ConsentRow)
        .where(m.ConsentRow.person_ident.in_(sorted(idents)))
        .order_by(m.ConsentRow.id)
    ).all()
    return [record_of(r) for r in rows]


def record_of(row: sa.Row) -> ConsentRecord:
    """A consent from a row with the consent table's columns."""
    return ConsentRecord(
        row.id,
        row.person_ident,
        row.office,
        row.scope,
        row.valid_from,
        row.valid_to,
        row.form_reference,
        row.registered_by,
        aware(row.registered_at),
        aware(row.withdrawn_at),
        row.withdrawn_by,
    )
