"""Consents: registered, withdrawn and searched by the caseworkers of the office given them.

Each passes the same gate as opening the card (kode 6, skjermet, own card) and answers a person
the caller may not open exactly as an unknown one. A registration or withdrawal and its audit
event are stored in one transaction, or neither is; searches and refusals are audited too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog, begin_write
from personkort.card import Card
from personkort.consents import ConsentError, ConsentRecord, NewConsent, check_new
from personkort.ident import IdentError, normalise, parse
from personkort.policy.engine import Caseworker, Decision, evaluate, gate
from personkort.services import events
from personkort.services.errors import (
    Invalid,
    NotFound,
    missing_role,
    new_trace,
    store_errors,
    too_many,
)
from personkort.services.lookup import purpose_of, unknown_person
from personkort.services.policies import PolicyHolder
from personkort.services.ratelimit import LookupLimiter
from personkort.store import consents as repository
from personkort.store.served import ServedCards

ROLE = "veileder"


@dataclass(frozen=True, slots=True)
class ConsentView:
    """A consent as its office's caseworkers see it; ``in_force``: it opens its scope now
    (registered under a verified number of the card, within its period, not withdrawn)."""

    record: ConsentRecord
    in_force: bool


def unknown_consent(trace: str) -> NotFound:
    return NotFound("ukjent_samtykke", "No such consent at your office.", trace)


class ConsentService:
    def __init__(
        self,
        engine: sa.Engine,
        cards: ServedCards,
        policies: PolicyHolder,
        audit: AuditLog,
        clock: Callable[[], dt.datetime],
        limiter: LookupLimiter,
    ) -> None:
        self.engine = engine
        self.cards = cards
        self.policies = policies
        self.audit = audit
        self.clock = clock
        self.limiter = limiter

    def register(
        self,
        worker: Caseworker,
        *,
        ident: str,
        scope: str,
        valid_from: dt.date,
        valid_to: dt.date,
        form_reference: str,
        purpose: str | None = None,
        on_card: str | None = None,
    ) -> ConsentView:
        """``on_card``: the number the caseworker opened the card with (the page's form); the
        consent's number must be one of that card's verified numbers, so a consent is never
        registered on another person than the one at the desk."""
        trace, clean = new_trace(), purpose_of(purpose)
        self._role(worker, trace)
        number = self._number(ident)
        card = self._open(worker, number, clean, trace, "consent_register")
        if on_card is not None and normalise(on_card) not in card.all_idents:
            self._refused(worker, trace, "annet_kort", card, number, clean)
            raise Invalid(
                "annet_kort", "The consent's number is not on the card that was opened.", trace
            )
        if number not in card.verified_idents:
            self._refused(worker, trace, "ikke_verifisert_ident", card, number, clean)
            raise Invalid(
                "ikke_verifisert_ident",
                "A consent must be registered under a number a state register or the population "
                "register holds for the person (Arena, Infotrygd or the Folkeregister); this "
                "number is only in a municipal record.",
                trace,
            )
        current = self.policies.current()
        new = NewConsent(
            number,
            worker.office,
            scope,
            valid_from,
            valid_to,
            form_reference.strip(),
            worker.sub,
            self.clock(),
        )
        try:
            check_new(new, scopes=current.consent_scopes, max_months=current.consent_max_months)
        except ConsentError as exc:
            raise Invalid(exc.code, str(exc), trace) from None
        with store_errors(trace), begin_write(self.engine) as conn:
            record = repository.insert(conn, new)
            events.record(
                self.audit,
                "consent_registered",
                worker,
                {**_details(record), "purpose": clean, "trace_id": trace},
                ident=number,
                idents=card.all_idents,
                trace_id=trace,
                conn=conn,
            )
        return ConsentView(record, self._counts(record, card, worker))

    def withdraw(
        self, worker: Caseworker, consent_id: int, purpose: str | None = None
    ) -> ConsentView:
        trace, clean = new_trace(), purpose_of(purpose)
        self._role(worker, trace)
        with store_errors(trace), self.engine.connect() as conn:
            record = repository.get(conn, consent_id)
        if record is None or record.office != worker.office:
            raise unknown_consent(trace)
        card = self._card(worker, record.person_ident, trace)
        if card is not None:
            decision = gate(worker, card, self.policies.current(), purpose=clean)
            if not decision.permitted:
                self._refused(worker, trace, decision.reason_codes[0], card, None, clean)
                raise unknown_consent(trace)
        with store_errors(trace), begin_write(self.engine) as conn:
            after = repository.withdraw(conn, consent_id, by=worker.sub, now=self.clock())
            assert after is not None
            events.record(
                self.audit,
                "consent_withdrawn",
                worker,
                {**_details(after), "purpose": clean, "trace_id": trace},
                ident=record.person_ident,
                idents=card.all_idents if card else (),
                trace_id=trace,
                conn=conn,
            )
        return ConsentView(after, False)

    def search(
        self, worker: Caseworker, ident: str, purpose: str | None = None
    ) -> list[ConsentView]:
        """The consents given to the caller's office under any of the person's numbers."""
        trace, clean = new_trace(), purpose_of(purpose)
        self._role(worker, trace)
        card = self._open(worker, self._number(ident), clean, trace, "consent_search")
        with store_errors(trace), self.engine.connect() as conn:
            found = repository.for_idents(conn, card.all_idents)
        mine = [r for r in found if r.office == worker.office]
        events.record(
            self.audit,
            "consent_search",
            worker,
            {
                "card_id": card.card_id,
                "decision": "permit",
                "consent_ids": [r.id for r in mine],
                "purpose": clean,
                "trace_id": trace,
            },
            idents=card.all_idents,
            trace_id=trace,
        )
        return [ConsentView(r, self._counts(r, card, worker)) for r in mine]

    # -- the steps -------------------------------------------------------------------------

    def _role(self, worker: Caseworker, trace: str) -> None:
        """The role, then the caseworker's rate limit (shared with lookups: a consent search
        answers whether a number is a client, so it counts as a lookup)."""
        if ROLE not in worker.roles:
            raise missing_role(ROLE, trace)
        wait = self.limiter.admit(worker.sub)
        if wait:
            self._refused(worker, trace, "for_mange_oppslag", None, None, None, "consent")
            raise too_many(trace, wait)

    @staticmethod
    def _number(raw: str) -> str:
        try:
            return parse(normalise(raw)).value
        except IdentError as exc:
            raise Invalid("ugyldig_ident", f"identity number: {exc.problem.value}") from None

    def _card(self, worker: Caseworker, number: str, trace: str) -> Card | None:
        with store_errors(trace):
            return self.cards.by_ident(number, worker.pid).card

    def _open(
        self, worker: Caseworker, number: str, purpose: str | None, trace: str, action: str
    ) -> Card:
        """The person's card if the gate lets this caller act on it; otherwise the answer an
        unknown person gets, and the refusal is audited."""
        card = self._card(worker, number, trace)
        if card is None:
            self._refused(worker, trace, "ukjent_person", None, number, purpose, action)
            raise unknown_person(trace)
        current = self.policies.current()
        decision = gate(worker, card, current, purpose=purpose)
        if decision.permitted:
            # A card with nothing on it for this caller (say, only another municipality's RUS
            # record) is unknown to them here too: its consents would say it exists.
            view = evaluate(worker, card, [], current, purpose=purpose, now=self.clock())
            if view.absent:
                decision = Decision(False, current.version, ["ukjent_person"])
        if not decision.permitted:
            self._refused(worker, trace, decision.reason_codes[0], card, number, purpose, action)
            raise unknown_person(trace)
        return card

    def _refused(
        self,
        worker: Caseworker,
        trace: str,
        code: str,
        card: Card | None,
        number: str | None,
        purpose: str | None,
        action: str = "consent",
    ) -> None:
        events.record(
            self.audit,
            "consent_refused",
            worker,
            {
                "card_id": card.card_id if card else None,
                "decision": "not_found" if code == "ukjent_person" else "deny",
                "reason_codes": [code],
                "action": action,
                "purpose": purpose,
                "policy_version": self.policies.version,
                "trace_id": trace,
            },
            ident=number,
            idents=card.all_idents if card else (),
            trace_id=trace,
        )

    def _counts(self, record: ConsentRecord, card: Card, worker: Caseworker) -> bool:
        return record.person_ident in card.verified_idents and (
            record.as_policy_consent().in_force(worker.office, self.clock())
        )


def _details(record: ConsentRecord) -> dict[str, Any]:
    return {
        "consent_id": record.id,
        "scope": record.scope,
        "office": record.office,
        "valid_from": record.valid_from.isoformat(),
        "valid_to": record.valid_to.isoformat(),
        "form_reference": record.form_reference,
        "withdrawn": record.withdrawn_at is not None,
    }
