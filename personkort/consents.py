"""Consents: registered and withdrawn by caseworkers, in force from the next lookup."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from personkort.policy.engine import Consent
from personkort.store import models as m


class ConsentError(ValueError):
    """A consent that may not be registered; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: int
    office: str
    scope: str
    valid_from: dt.date
    valid_to: dt.date
    form_reference: str
    registered_by: str
    registered_at: dt.datetime
    withdrawn_at: dt.datetime | None
    withdrawn_by: str | None

    def as_policy_consent(self) -> Consent:
        return Consent(self.scope, self.office, self.valid_from, self.valid_to, self.withdrawn_at)


def _months_later(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def register(
    engine: sa.Engine,
    *,
    ident: str,
    office: str,
    scope: str,
    valid_from: dt.date,
    valid_to: dt.date,
    form_reference: str,
    by: str,
    scopes: frozenset[str],
    max_months: int,
    now: dt.datetime,
) -> ConsentRecord:
    if scope not in scopes:
        raise ConsentError("ukjent_samtykke", f"unknown consent scope {scope!r}")
    if valid_to < valid_from:
        raise ConsentError("ugyldig_periode", "the consent expires before it starts")
    if valid_to > _months_later(valid_from, max_months):
        raise ConsentError("for_lang_periode", f"a consent lasts at most {max_months} months")
    if not form_reference.strip():
        raise ConsentError("mangler_skjema", "a reference to the signed form is required")
    with engine.begin() as conn:
        new_id = conn.execute(
            sa.insert(m.ConsentRow).returning(m.ConsentRow.id),
            {
                "person_ident": ident,
                "office": office,
                "scope": scope,
                "valid_from": valid_from,
                "valid_to": valid_to,
                "form_reference": form_reference,
                "registered_by": by,
                "registered_at": now,
            },
        ).scalar_one()
    return get(engine, new_id)  # type: ignore[return-value]


def get(engine: sa.Engine, consent_id: int) -> ConsentRecord | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(m.ConsentRow).where(m.ConsentRow.id == consent_id)).first()
    return record_of(row) if row else None


def person_ident_of(engine: sa.Engine, consent_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(m.ConsentRow.person_ident).where(m.ConsentRow.id == consent_id)
        )


def withdraw(engine: sa.Engine, consent_id: int, *, by: str, now: dt.datetime) -> ConsentRecord:
    with engine.begin() as conn:
        conn.execute(
            sa.update(m.ConsentRow)
            .where(m.ConsentRow.id == consent_id, m.ConsentRow.withdrawn_at.is_(None))
            .values(withdrawn_at=now, withdrawn_by=by)
        )
    record = get(engine, consent_id)
    assert record is not None
    return record


def for_idents(engine: sa.Engine, idents: set[str]) -> list[ConsentRecord]:
    """Every consent given under any of the person's identity numbers."""
    if not idents:
        return []
    with engine.connect() as conn:
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
        row.office,
        row.scope,
        row.valid_from,
        row.valid_to,
        row.form_reference,
        row.registered_by,
        _aware(row.registered_at),
        _aware(row.withdrawn_at),
        row.withdrawn_by,
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes; everything here is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
