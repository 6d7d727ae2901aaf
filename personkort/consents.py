"""Consents: what one is and which may be registered. Stored by personkort.store.consents."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from personkort.policy.engine import Consent


class ConsentError(ValueError):
    """A consent that may not be registered; ``code`` is a stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: int
    person_ident: str
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
        return Consent(
            self.scope,
            self.office,
            self.valid_from,
            self.valid_to,
            self.withdrawn_at,
            self.person_ident,
        )


@dataclass(frozen=True, slots=True)
class NewConsent:
    """A consent as a caseworker registers it, before it is stored."""

    person_ident: str
    office: str
    scope: str
    valid_from: dt.date
    valid_to: dt.date
    form_reference: str
    registered_by: str
    registered_at: dt.datetime


def months_later(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def check_new(consent: NewConsent, *, scopes: frozenset[str], max_months: int) -> None:
    """Raise ConsentError unless the policy allows this consent."""
    if consent.scope not in scopes:
        raise ConsentError("ukjent_samtykke", f"unknown consent scope {consent.scope!r}")
    if consent.valid_to < consent.valid_from:
        raise ConsentError("ugyldig_periode", "the consent expires before it starts")
    if consent.valid_to > months_later(consent.valid_from, max_months):
        raise ConsentError("for_lang_periode", f"a consent lasts at most {max_months} months")
    if not consent.form_reference.strip():
        raise ConsentError("mangler_skjema", "a reference to the signed form is required")
