"""Looking up a card, by any identity number or by card id: the caseworkers' use case.

Order: the caller's role (before any person is read), the rate limit, the card, the gate and
the view, the audit event (durably stored), then the answer. A card never leaves without its
event; anything that cannot be decided denies.

The caseworkers' page asks ``for_page``: the same lookup, in the same order, whose answer adds
what the screen needs beside the view (the card's protection markers and which registers'
records for the person could not be read in the served night: "source unavailable").
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog
from personkort.card import STATE_REGISTERS, Card
from personkort.freshness import source_states
from personkort.ident import normalise
from personkort.policy.engine import Caseworker, Decision, evaluate
from personkort.purpose import PurposeError, clean_purpose
from personkort.services import events
from personkort.services.errors import (
    Denied,
    Invalid,
    NotFound,
    missing_role,
    new_trace,
    store_unavailable,
    too_many,
)
from personkort.services.policies import PolicyHolder
from personkort.services.ratelimit import LookupLimiter
from personkort.store.crypto import KeyRing
from personkort.store.quarantine import iter_quarantine
from personkort.store.served import Found, ServedCards

log = logging.getLogger("personkort.lookup")
ROLE = "veileder"
ELEVEN_DIGITS = re.compile(r"[0-9]{11}")
# An identity number inside a quarantined raw line: 11 digits not part of a longer run.
NUMBER_IN_RAW = re.compile(r"(?<![0-9])[0-9]{11}(?![0-9])")


@dataclass(frozen=True, slots=True)
class Moved:
    """A merged-away card id: the card now lives under ``card_id``."""

    card_id: str


@dataclass(frozen=True, slots=True)
class Gap:
    """A record a register sent for this person that the served night could not read (it is in
    quarantine): the screen says the source is unavailable instead of "not registered"."""

    register: str
    section: str  # identity | follow_up | measures | state_benefits | municipal_services


@dataclass(frozen=True, slots=True)
class CardPage:
    """The view (exactly what the API answers) and what the page shows beside it."""

    view: dict[str, Any]
    protection: str | None  # the gate let this caseworker open the card: they may know it
    skjermet: bool
    gaps: list[Gap]


def _section(register: str, location: str, reason: str, raw: str) -> str:
    """Which part of the card a quarantined record would have filled."""
    if register == "kommune":
        return "municipal_services"
    if register == "arena":
        table = location.split(":", 1)[0]
        return {"VEDTAK": "state_benefits", "TILTAKDELTAKER": "measures"}.get(table, "identity")
    person = "person record" in reason or raw.startswith("1")
    return "identity" if person else "state_benefits"


class QuarantineIndex:
    """The served night's quarantined records by the identity numbers their raw lines hold.

    A night never changes once published, so the index is built once per night (the raw lines
    are decrypted in memory here and only the register, the section and the number are kept)."""

    def __init__(self, engine: sa.Engine, keys: KeyRing | None = None) -> None:
        self.engine = engine
        self._keys = keys
        self._night: int | None = None
        self._by_ident: dict[str, list[tuple[str, str, str | None]]] = {}
        self._lock = threading.Lock()

    def for_night(self, night: int | None) -> dict[str, list[tuple[str, str, str | None]]]:
        if night is None:
            return {}
        with self._lock:
            if night != self._night:
                self._by_ident = self._build(night)
                self._night = night
            return self._by_ident

    def _build(self, night: int) -> dict[str, list[tuple[str, str, str | None]]]:
        index: dict[str, list[tuple[str, str, str | None]]] = {}
        for r in iter_quarantine(self.engine, night, with_raw=True, keys=self._keys):
            raw = r.raw or ""
            section = _section(r.register, r.location, r.reason, raw)
            owner = _owner_of(r.location) if r.register == "kommune" else None
            # Infotrygd's fixed-width lines run fields together: its FNR is columns 2 to 12.
            numbers = {raw[1:12]} if r.register == "infotrygd" else set(NUMBER_IN_RAW.findall(raw))
            for number in numbers:
                index.setdefault(number, []).append((r.register, section, owner))
        return index


def _owner_of(location: str) -> str | None:
    """``sosio_3205:line:10`` -> ``3205``: the municipality whose file held the record."""
    name = location.split(":", 1)[0]
    _, _, kommune = name.partition("_")
    return kommune if kommune.isdigit() else None


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
        self.quarantine = QuarantineIndex(cards.engine)

    def by_ident(self, worker: Caseworker, ident: str, purpose: str | None) -> dict[str, Any]:
        """The card holding this number (current or earlier), as this caseworker may see it."""
        return self._by_ident(worker, ident, purpose, with_gaps=False).view

    def for_page(self, worker: Caseworker, ident: str, purpose: str | None) -> CardPage:
        """``by_ident`` for the caseworkers' page: the same steps in the same order (the served
        night's quarantine index is read in the read step, before the gate), and an answer that
        adds the card's markers and its unreadable sources."""
        return self._by_ident(worker, ident, purpose, with_gaps=True)

    def _by_ident(
        self, worker: Caseworker, ident: str, purpose: str | None, *, with_gaps: bool
    ) -> CardPage:
        clean, trace = purpose_of(purpose), new_trace()
        number = normalise(ident)
        if not ELEVEN_DIGITS.fullmatch(number):
            # Not a number any card can hold: nobody is looked up (and nothing to audit).
            raise Invalid("ugyldig_ident", "An identity number is 11 digits.")
        self._admit(worker, trace, clean, ident=number)
        found = self._read(lambda: self.cards.by_ident(number, worker.pid), trace)
        quarantined = (
            self._read(lambda: self.quarantine.for_night(found.night), trace)
            if with_gaps and found.card is not None
            else {}
        )
        view = self._answer(worker, found, clean, trace, ident=number)
        card = found.card
        assert card is not None  # _answer raised for a missing card
        return CardPage(view, card.protection, card.skjermet, _gaps(worker, card, quarantined))

    def by_card_id(
        self, worker: Caseworker, card_id: str, purpose: str | None
    ) -> dict[str, Any] | Moved:
        """A card by its id (a bookmark). A merged-away id answers where the card went, after
        the role check and with an audit event of its own."""
        clean, trace = purpose_of(purpose), new_trace()
        self._admit(worker, trace, clean, card_id=card_id)
        found = self._read(lambda: self.cards.by_card_id(card_id, worker.pid), trace)
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
            "sources": source_states(decision.view, found.facts) if found.facts else [],
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
            # a gate step that would have refused the card stays on the record for auditors
            codes=["ukjent_person", *decision.reason_codes] if absent else None,
            note="ingenting_synlig" if absent else None,
        )


def _gaps(
    worker: Caseworker, card: Card, quarantined: dict[str, list[tuple[str, str, str | None]]]
) -> list[Gap]:
    """The card's records that are in quarantine, as far as this caseworker may know of them:
    a state register's to everyone who may open the card, a municipality's only to that
    municipality's own caseworkers (that a person has a municipal record can be the secret)."""
    found: set[Gap] = set()
    for number in card.all_idents:
        for register, section, owner in quarantined.get(number, ()):
            if register in STATE_REGISTERS or (owner and owner == worker.municipality):
                found.add(Gap(register, section))
    return sorted(found, key=lambda g: (g.section, g.register))
