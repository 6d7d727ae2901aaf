"""Looking up a card, by any identity number or by card id: the caseworkers' use case.

Order: the caller's role (before any person is read), the rate limit, the card, the gate and
the view, the audit event (durably stored), then the answer. A card never leaves without its
event; anything that cannot be decided denies.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog
from personkort.ident import normalise
from personkort.policy.engine import Caseworker, Decision, evaluate
from personkort.purpose import PurposeError, clean_purpose
from personkort.services import events
from personkort.services.errors import (
    Denied,
    Invalid,
    NotFound,
    missing_role,
    store_unavailable,
    too_many,
)
from personkort.services.policies import PolicyHolder
from personkort.services.ratelimit import LookupLimiter
from personkort.store.served import Found, ServedCards

log = logging.getLogger("personkort.lookup")
ROLE = "veileder"
ELEVEN_DIGITS = re.compile(r"[0-9]{11}")


@dataclass(frozen=True, slots=True)
class Moved:
    """A merged-away card id: the card now lives under ``card_id``."""

    card_id: str


def purpose_of(text: str | None) -> str | None:
    try:
        return clean_purpose(text)
    except PurposeError as exc:
        raise Invalid(exc.code, str(exc)) from None


def unknown_person(trace_id: str | None) -> NotFound:
    return NotFound("ukjent_person", "No card for that person.", trace_id)


class LookupService:
    def __init__(
        self,
        cards: ServedCards,
        policies: PolicyHolder,
        audit: AuditLog,
        limiter: LookupLimiter,
        clock: Callable[[], dt.datetime],
        successors: Callable[[str], list[str]],
    ) -> None:
        self.cards = cards
        self.policies = policies
        self.audit = audit
        self.limiter = limiter
        self.clock = clock
        self.successors = successors
        self._store_down = False

    def by_ident(self, worker: Caseworker, ident: str, purpose: str | None) -> dict[str, Any]:
        """The card holding this number (current or earlier), as this caseworker may see it."""
        clean, trace = purpose_of(purpose), uuid.uuid4().hex
        number = normalise(ident)
        if not ELEVEN_DIGITS.fullmatch(number):
            # Not a number any card can hold: nobody is looked up (and nothing to audit).
            raise Invalid("ugyldig_ident", "An identity number is 11 digits.")
        self._admit(worker, trace, clean, ident=number)
        found = self._read(lambda: self.cards.by_ident(number), trace)
        return self._answer(worker, found, clean, trace, ident=number)

    def by_card_id(
        self, worker: Caseworker, card_id: str, purpose: str | None
    ) -> dict[str, Any] | Moved:
        """A card by its id (a bookmark). A merged-away id answers where the card went, after
        the role check and with an audit event of its own."""
        clean, trace = purpose_of(purpose), uuid.uuid4().hex
        self._admit(worker, trace, clean, card_id=card_id)
        found = self._read(lambda: self.cards.by_card_id(card_id), trace)
        if found.card is None:
            moved = self._read(lambda: self.successors(card_id), trace)
            if len(moved) == 1:
                details = events.lookup_details(
                    card_id=card_id,
                    decision=None,
                    policy_version=self.policies.version,
                    purpose=clean,
                    trace_id=trace,
                    outcome="moved",
                    codes=["kort_flyttet"],
                )
                details["moved_to"] = moved[0]
                events.record(self.audit, "lookup", worker, details, trace_id=trace)
                return Moved(moved[0])
        return self._answer(worker, found, clean, trace, requested=card_id)

    # -- the steps -------------------------------------------------------------------------

    def _admit(
        self,
        worker: Caseworker,
        trace: str,
        purpose: str | None,
        *,
        ident: str | None = None,
        card_id: str | None = None,
    ) -> None:
        """The role, then the rate limit; each refusal is an audit event of its own."""
        if ROLE not in worker.roles:
            self._refuse(worker, trace, purpose, "mangler_rolle", ident=ident, card_id=card_id)
            raise missing_role(ROLE, trace)
        wait = self.limiter.admit(worker.sub)
        if wait:
            self._refuse(worker, trace, purpose, "for_mange_oppslag", ident=ident, card_id=card_id)
            log.warning("lookup rate limit reached by a caseworker (trace %s)", trace)
            raise too_many(trace, wait)

    def _refuse(
        self,
        worker: Caseworker,
        trace: str,
        purpose: str | None,
        code: str,
        *,
        ident: str | None,
        card_id: str | None,
    ) -> None:
        details = events.lookup_details(
            card_id=None,  # not read yet: a typed id is text, scrubbed like any (below)
            decision=None,
            policy_version=self.policies.version,
            purpose=purpose,
            trace_id=trace,
            outcome="deny",
            codes=[code],
        )
        if card_id is not None:
            details["requested_card_id"] = card_id
        events.record(self.audit, "lookup", worker, details, ident=ident, trace_id=trace)

    def _read(self, read: Callable[[], Any], trace: str) -> Any:
        """A store read; a failure answers 503 and is logged once per outage, and so is the
        first success after one (operators see when it went and when it came back)."""
        try:
            value = read()
        except sa.exc.SQLAlchemyError as exc:
            if not self._store_down:
                log.error("store unavailable: %s (trace %s)", type(exc).__name__, trace)
            self._store_down = True
            raise store_unavailable(trace) from None
        if self._store_down:
            self._store_down = False
            log.warning("store available again (trace %s)", trace)
        return value

    def _answer(
        self,
        worker: Caseworker,
        found: Found,
        purpose: str | None,
        trace: str,
        *,
        ident: str | None = None,
        requested: str | None = None,
    ) -> dict[str, Any]:
        """Decide, audit, then answer: the card leaves only after its event is stored."""
        current = self.policies.current()
        card, on_file = found.card, found.consents
        if card is None:
            details = events.lookup_details(
                card_id=None,
                decision=None,
                policy_version=current.version,
                purpose=purpose,
                trace_id=trace,
            )
            if requested is not None:
                details["requested_card_id"] = requested  # no such card: text, scrubbed
            events.record(self.audit, "lookup", worker, details, ident=ident, trace_id=trace)
            raise unknown_person(trace)
        now = self.clock()
        decision = evaluate(
            worker,
            card,
            [c.as_policy_consent() for c in on_file],
            current,
            purpose=purpose,
            now=now,
        )
        details = self._details(card.card_id, decision, current.version, purpose, trace)
        events.record(
            self.audit,
            "lookup",
            worker,
            details,
            ident=ident,
            idents=card.all_idents,
            trace_id=trace,
        )
        if not decision.permitted:
            raise Denied(decision.reason_codes[0], decision.message or "", trace)
        if decision.absent:
            raise unknown_person(trace)
        assert decision.view is not None
        verified = card.verified_idents
        mine = [c for c in on_file if c.office == worker.office]
        return {
            **decision.view,
            "consents": [
                {
                    "id": c.id,
                    "scope": c.scope,
                    "valid_from": c.valid_from.isoformat(),
                    "valid_to": c.valid_to.isoformat(),
                    "in_force": c.person_ident in verified
                    and c.as_policy_consent().in_force(worker.office, now),
                    "form_reference": c.form_reference,
                }
                for c in mine
            ],
            "policy_version": current.version,
            "trace_id": trace,
        }

    @staticmethod
    def _details(
        card_id: str, decision: Decision, version: str, purpose: str | None, trace: str
    ) -> dict[str, Any]:
        # A card with nothing for this caseworker is answered as an unknown person; the event
        # says why, for the auditor.
        absent = decision.permitted and decision.absent
        return events.lookup_details(
            card_id=card_id,
            decision=decision,
            policy_version=version,
            purpose=purpose,
            trace_id=trace,
            outcome="not_found" if absent else None,
            codes=["ukjent_person"] if absent else None,
            note="ingenting_synlig" if absent else None,
        )
