"""Receiving the Folkeregister's events during the day: the population register's use case.

Order: the caller's role, then every readable event stored once by its ``hendelseId`` and every
unreadable one quarantined, with one audit event naming them all, in one transaction: a batch
is stored with its event or not at all, and a batch delivered twice stores nothing the second
time (and says so). The generation the store moves makes every API process read a card's feed
facts again at its next lookup: a raised marker counts at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from personkort.audit import AuditLog, begin_write
from personkort.feed.records import FeedEvent
from personkort.policy.engine import Caseworker
from personkort.records import Quarantined
from personkort.services import events
from personkort.services.errors import missing_role, new_trace, store_errors
from personkort.store import feed
from personkort.store.crypto import KeyRing, key_ring

ROLE = "folkeregister"
AUDIT_PART = 50  # events per audit event (each names at most 200 numbers)
MAX_LISTED = 200  # quarantined items listed by location and reason in the audit event


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of a batch: every event is accounted for."""

    received: int  # events and unreadable items in the batch
    stored: int  # new events, stored now
    duplicates: int  # events already stored (by hendelseId), or twice in the batch
    quarantined: int
    trace_id: str


class FeedEventService:
    def __init__(
        self,
        engine: sa.Engine,
        audit: AuditLog,
        clock: Callable[[], dt.datetime],
        keys: KeyRing | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock
        self._keys = keys

    def receive(
        self,
        caller: Caseworker,
        accepted: list[FeedEvent],
        quarantined: list[Quarantined],
        *,
        source: str,
    ) -> Receipt:
        """Store a batch (read by the adapter: ``accepted`` and ``quarantined``) from ``source``
        (the inbox file's name, or ``api``)."""
        trace = self.admit(caller, source)
        now = self.clock()
        with store_errors(trace), begin_write(self.engine) as conn:
            stored = feed.store_events(conn, accepted, now)
            feed.quarantine_events(conn, quarantined, now, self._keys or key_ring())
            # One audit event per part of the batch: an event names at most 200 numbers.
            parts = [stored[i : i + AUDIT_PART] for i in range(0, len(stored), AUDIT_PART)]
            for n, part in enumerate(parts or [[]]):
                details: dict[str, object] = {
                    "source": source,
                    "outcome": "stored",
                    "part": n + 1,
                    "parts": len(parts or [[]]),
                    "stored": [
                        {"id": e.event_id, "kind": e.kind.value, "change": e.change.value}
                        for e in part
                    ],
                    "trace_id": trace,
                }
                if n == 0:
                    details["received"] = len(accepted) + len(quarantined)
                    details["duplicates"] = len(accepted) - len(stored)
                    details["quarantined"] = [
                        {"location": q.location, "reason": q.reason}
                        for q in quarantined[:MAX_LISTED]
                    ]
                    details["quarantined_count"] = len(quarantined)
                events.record(
                    self.audit,
                    "feed_events",
                    caller,
                    details,
                    idents={x for e in part for x in e.idents},
                    trace_id=trace,
                    conn=conn,
                )
        return Receipt(
            len(accepted) + len(quarantined),
            len(stored),
            len(accepted) - len(stored),
            len(quarantined),
            trace,
        )

    def admit(self, caller: Caseworker, source: str = "api") -> str:
        """The caller's role, before anything of the batch is read: a refusal is audited and
        raised. Returns the batch's trace id."""
        trace = new_trace()
        if ROLE not in caller.roles:
            events.record(
                self.audit,
                "feed_events",
                caller,
                {
                    "source": source,
                    "outcome": "deny",
                    "codes": ["mangler_rolle"],
                    "trace_id": trace,
                },
                trace_id=trace,
            )
            raise missing_role(ROLE, trace)
        return trace

    def inbox_unreadable(self, caller: Caseworker, error: str) -> None:
        """The inbox could not be read: recorded, so the cards say the day's events may be
        missing (the last state stays in force)."""
        with store_errors(), begin_write(self.engine) as conn:
            feed.mark_inbox(conn, self.clock(), error)

    def inbox_read(self) -> None:
        with store_errors(), begin_write(self.engine) as conn:
            feed.mark_inbox(conn, self.clock(), None)
