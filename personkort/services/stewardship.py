"""Data stewards: the nights with their counts, quarantine, the review queue and decisions.

A decision and its audit event are stored in one transaction; it binds from the next night on.
Raw quarantined lines (which may hold anything a register sent) are for stewards only.

A steward deciding from a page says which ruling on the pair they saw (``seen``: its id, or
``"none"``). The check and the insert run under the pair's lock in the same transaction as the
audit event, so of two stewards deciding one pair at once the second is refused
(``AlreadyDecided``, naming who decided and when) instead of silently overruling the first.
"Later" is not a ruling: it leaves the pair in the queue, and is kept as a ``steward_decision``
audit event with the decision ``later`` and the steward's comment, which the queue shows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from personkort.audit import AuditLog, begin_write
from personkort.policy.engine import Caseworker
from personkort.services import events
from personkort.services.errors import (
    Conflict,
    Invalid,
    NotFound,
    missing_role,
    new_trace,
    store_errors,
)
from personkort.store import queries, reviews
from personkort.store.quarantine import QuarantineItem, quarantine_rows
from personkort.store.reviews import RecordView, Ruling

ROLE = "forvalter"
Outcome = Literal["same", "not_same", "later"]
OUTCOMES: tuple[Outcome, ...] = ("same", "not_same", "later")
NONE_SEEN = "none"
MAX_COMMENT = 1000
DEFERRALS_READ = 10_000  # "later" events read back for the queue (a steward's working set)


class AlreadyDecided(Conflict):
    """Another steward (or this one, in another tab) ruled on the pair after the page showing
    it was loaded: nothing was stored. The API answers 409, the page says who and when."""

    def __init__(self, ruling: Ruling, trace_id: str | None = None) -> None:
        super().__init__(
            "allerede_avgjort",
            f"The pair was decided by {ruling.steward} at {ruling.decided_at.isoformat()} "
            "after you loaded it; nothing was stored.",
            trace_id,
        )
        self.ruling = ruling


@dataclass(frozen=True, slots=True)
class Deferral:
    """A steward's "later" on a pair, with the comment that says what is awaited."""

    steward: str
    at: dt.datetime | None
    comment: str


@dataclass(frozen=True, slots=True)
class FieldComparison:
    """One field of the two records and whether they agree: ``lik`` (both say the same),
    ``ulik`` (they differ) or ``mangler`` (one or both do not say)."""

    field: str
    a: str | None
    b: str | None
    state: Literal["lik", "ulik", "mangler"]


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """A queued pair with what a steward needs to settle it."""

    id: int
    night_id: int
    record_key: str
    candidate_key: str
    score: float
    evidence: dict[str, Any]
    ruling: Ruling | None
    deferral: Deferral | None
    a: RecordView | None = None
    b: RecordView | None = None
    fields: list[FieldComparison] = field(default_factory=list)

    @property
    def seen(self) -> str:
        """The concurrency token a decision form carries: the ruling the steward saw."""
        return str(self.ruling.id) if self.ruling else NONE_SEEN

    @property
    def state(self) -> str:
        """``open``, ``later`` (deferred, no ruling) or ``decided`` (binds from next night)."""
        if self.ruling is not None:
            return "decided"
        return "later" if self.deferral is not None else "open"


@dataclass(frozen=True, slots=True)
class RulingStatus:
    """A ruling and whether the served night honours it: ``pending`` (made after the served
    night began: the next night applies it), ``honoured``, ``not_honoured`` (a newer fact
    overrode it, e.g. a record no longer delivered) or ``gone`` (a record is not in the night)."""

    ruling: Ruling
    status: Literal["pending", "honoured", "not_honoured", "gone"]
    night: int | None
    card_a: str | None
    card_b: str | None


@dataclass(frozen=True, slots=True)
class Settled:
    """What a steward's action stored: the ruling (None for "later") and its trace id."""

    outcome: Outcome
    ruling: Ruling | None
    trace_id: str


class StewardService:
    def __init__(
        self, engine: sa.Engine, audit: AuditLog, clock: Callable[[], dt.datetime]
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    # -- nights and quarantine ---------------------------------------------------------------

    def nights(self, worker: Caseworker) -> list[dict[str, Any]]:
        """Every night, newest first, each saying whether it is the one served."""
        self._role(worker)
        with store_errors():
            served = queries.served_night(self.engine)
            return [{**n, "served": n["id"] == served} for n in queries.nights(self.engine)][::-1]

    def night(self, worker: Caseworker, night_id: int) -> dict[str, Any]:
        for n in self.nights(worker):
            if n["id"] == night_id:
                return n
        raise NotFound("ukjent_natt", "No such night.")

    def quarantine(
        self, worker: Caseworker, night_id: int, *, limit: int, offset: int
    ) -> list[QuarantineItem]:
        """A night's quarantined records with their reasons and, for stewards only, the raw
        lines as the register sent them (sealed at rest, opened here)."""
        self._role(worker)
        with store_errors():
            return quarantine_rows(self.engine, night_id, limit=limit, offset=offset, with_raw=True)

    # -- the review queue --------------------------------------------------------------------

    def reviews(self, worker: Caseworker) -> list[sa.Row]:
        """The served night's uncertain pairs, with the evidence side by side."""
        self._role(worker)
        with store_errors():
            return queries.reviews(self.engine, queries.served_night(self.engine))

    def queue(self, worker: Caseworker) -> list[ReviewPair]:
        """The served night's pairs, each with its newest ruling and any "later" on it."""
        self._role(worker)
        with store_errors():
            rows = queries.reviews(self.engine, queries.served_night(self.engine))
            rulings = reviews.latest_rulings(
                self.engine, [(r.record_key, r.candidate_key) for r in rows]
            )
        deferrals = self._deferrals()
        return [self._pair(r, rulings, deferrals) for r in rows]

    def pair(self, worker: Caseworker, review_id: int) -> ReviewPair:
        """One queued pair of the served night with both records side by side, as the night
        holds them, and the fields that agree and differ."""
        self._role(worker)
        with store_errors():
            served = queries.served_night(self.engine)
            row = reviews.review_item(self.engine, review_id)
            if row is None or row.night_id != served:
                raise NotFound("ukjent_par", "No such pair in the served night's queue.")
            rulings = reviews.latest_rulings(self.engine, [(row.record_key, row.candidate_key)])
            found = reviews.records(self.engine, row.night_id, (row.record_key, row.candidate_key))
        pair = self._pair(row, rulings, self._deferrals())
        a, b = found.get(row.record_key), found.get(row.candidate_key)
        return ReviewPair(
            id=pair.id,
            night_id=pair.night_id,
            record_key=pair.record_key,
            candidate_key=pair.candidate_key,
            score=pair.score,
            evidence=pair.evidence,
            ruling=pair.ruling,
            deferral=pair.deferral,
            a=a,
            b=b,
            fields=compare(a, b),
        )

    def rulings(self, worker: Caseworker, limit: int = 50) -> list[RulingStatus]:
        """The newest rulings and what the served night made of each."""
        self._role(worker)
        with store_errors():
            served = queries.served_night(self.engine)
            recent = reviews.recent_rulings(self.engine, limit)
            if served is None:
                return [RulingStatus(r, "pending", None, None, None) for r in recent]
            started = reviews.night_started(self.engine, served)
            cards = reviews.cards_of(
                self.engine, served, {k for r in recent for k in (r.record_a, r.record_b)}
            )
        out = []
        for r in recent:
            a, b = cards.get(r.record_a), cards.get(r.record_b)
            status: Literal["pending", "honoured", "not_honoured", "gone"]
            if started is not None and r.decided_at >= started:
                status = "pending"
            elif a is None or b is None:
                status = "gone"
            else:
                status = "honoured" if (a == b) == r.same else "not_honoured"
            out.append(RulingStatus(r, status, served, a, b))
        return out

    def decide_review(
        self, worker: Caseworker, review_id: int, outcome: str, comment: str, seen: str
    ) -> Settled:
        """A steward's answer from the page: a queued pair of the served night, a required
        comment, and the ruling they saw."""
        self._role(worker)
        with store_errors():
            row = reviews.review_item(self.engine, review_id)
            served = queries.served_night(self.engine)
        if row is None or row.night_id != served:
            raise NotFound("ukjent_par", "No such pair in the served night's queue.")
        if not comment.strip():
            raise Invalid("kommentar_mangler", "A comment is required.")
        return self.settle(worker, row.record_key, row.candidate_key, outcome, comment, seen=seen)

    def decide(
        self,
        worker: Caseworker,
        record_a: str,
        record_b: str,
        same: bool,
        reason: str | None,
        *,
        seen: str | None = None,
    ) -> Settled:
        """A steward's ruling on a pair: stored with its audit event, or not at all."""
        return self.settle(
            worker, record_a, record_b, "same" if same else "not_same", reason, seen=seen
        )

    def settle(
        self,
        worker: Caseworker,
        record_a: str,
        record_b: str,
        outcome: str,
        reason: str | None,
        *,
        seen: str | None = None,
    ) -> Settled:
        """Same, not the same, or later. With ``seen`` (the ruling id the steward saw, or
        ``"none"``), refused when the pair got a newer ruling in the meantime. "Later" needs a
        comment (it is nothing but what the steward is waiting for)."""
        self._role(worker)
        if outcome not in OUTCOMES:
            raise Invalid("ukjent_utfall", "The outcome is same, not_same or later.")
        if record_a == record_b:
            raise Invalid("samme_post", "A record cannot be ruled on against itself.")
        reason = reason.strip() if reason else None
        if reason and len(reason) > MAX_COMMENT:
            raise Invalid("kommentar_for_lang", f"The comment is over {MAX_COMMENT} characters.")
        if outcome == "later" and not reason:
            raise Invalid("kommentar_mangler", "A comment is required.")
        if seen is not None and seen != NONE_SEEN and not seen.isdigit():
            raise Invalid("ugyldig_versjon", "seen is a ruling id or 'none'.")
        trace = new_trace()
        now = self.clock()
        details: dict[str, Any] = {
            "record_a": record_a,
            "record_b": record_b,
            "pair": pair_ref(record_a, record_b),
            "decision": outcome,
            "same": {"same": True, "not_same": False}.get(outcome),
            "reason": reason,
            "seen": seen,
            "trace_id": trace,
        }
        ruling = None
        with store_errors(trace), begin_write(self.engine) as conn:
            reviews.lock_pair(conn, record_a, record_b)
            latest = reviews.latest_ruling(conn, record_a, record_b)
            if seen is not None and (str(latest.id) if latest else NONE_SEEN) != seen:
                if latest is None:
                    raise Invalid("ugyldig_versjon", "No such ruling on this pair.", trace)
                raise AlreadyDecided(latest, trace)
            if outcome == "later":
                details["deferred_at"] = now.isoformat()
            else:
                same = outcome == "same"
                ruling_id = reviews.insert_ruling(
                    conn, record_a, record_b, same, worker.sub, reason, now
                )
                ruling = Ruling(ruling_id, record_a, record_b, same, worker.sub, reason, now)
                details["ruling_id"] = ruling_id
            events.record(
                self.audit, "steward_decision", worker, details, trace_id=trace, conn=conn
            )
        return Settled(outcome, ruling, trace)  # type: ignore[arg-type]

    # -- helpers -----------------------------------------------------------------------------

    def _deferrals(self) -> dict[str, Deferral]:
        """The newest "later" on each pair, from the audit log (where it is kept)."""
        with store_errors():
            found = self.audit.events(
                kind="steward_decision", decision="later", limit=DEFERRALS_READ
            )
        out: dict[str, Deferral] = {}
        for event in found:
            data = event.get("data") or {}
            ref = data.get("pair")
            if isinstance(ref, str):
                out[ref] = Deferral(
                    steward=(data.get("caseworker") or {}).get("sub", ""),
                    at=_moment(data.get("deferred_at") or event.get("at")),
                    comment=str(data.get("reason") or ""),
                )
        return out

    @staticmethod
    def _pair(
        row: Any, rulings: dict[tuple[str, str], Ruling], deferrals: dict[str, Deferral]
    ) -> ReviewPair:
        ruling = rulings.get(reviews.pair_key(row.record_key, row.candidate_key))
        deferral = deferrals.get(pair_ref(row.record_key, row.candidate_key))
        if (
            ruling is not None
            and deferral is not None
            and (deferral.at is None or deferral.at <= ruling.decided_at)
        ):
            deferral = None  # a ruling after the "later" settles it
        return ReviewPair(
            id=row.id,
            night_id=row.night_id,
            record_key=row.record_key,
            candidate_key=row.candidate_key,
            score=row.score,
            evidence=dict(row.evidence or {}),
            ruling=ruling,
            deferral=deferral,
        )

    @staticmethod
    def _role(worker: Caseworker) -> None:
        if ROLE not in worker.roles:
            raise missing_role(ROLE)


def pair_ref(a: str, b: str) -> str:
    """A pair's name in the audit log that the log's scrubber leaves alone: letters only (a
    record key can hold an identity number, which the log replaces by its keyed hash)."""
    digest = hashlib.sha256("\x00".join(reviews.pair_key(a, b)).encode()).digest()
    return "par-" + "".join(chr(ord("a") + byte % 26) for byte in digest[:20])


def _moment(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return ", ".join(value) or None
    return str(value)


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


COMPARED = (
    ("ident", "Fødselsnummer / D-nummer"),
    ("earlier_idents", "Tidligere nummer"),
    ("surname", "Etternavn"),
    ("given_names", "Fornavn"),
    ("middle_name", "Mellomnavn"),
    ("birth_date", "Fødselsdato"),
    ("death_date", "Dødsdato"),
    ("address", "Adresse"),
    ("postnr", "Postnummer"),
    ("poststed", "Poststed"),
    ("kommunenr", "Kommunenummer"),
)


def compare(a: RecordView | None, b: RecordView | None) -> list[FieldComparison]:
    """The two records field by field: what each says and whether they agree."""
    out = []
    for name, label in COMPARED:
        x = _text(getattr(a, name, None)) if a else None
        y = _text(getattr(b, name, None)) if b else None
        state: Literal["lik", "ulik", "mangler"] = (
            "mangler" if x is None or y is None else "lik" if _same(x, y) else "ulik"
        )
        out.append(FieldComparison(label, x, y, state))
    return out
