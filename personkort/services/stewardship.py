"""Data stewards: the nights with their counts, quarantine, the review queue and decisions.

A decision and its audit event are stored in one transaction; it binds from the next night on.
Raw quarantined lines (which may hold anything a register sent) are for stewards only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog, begin_write
from personkort.policy.engine import Caseworker
from personkort.services import events
from personkort.services.errors import Invalid, NotFound, missing_role, store_errors
from personkort.store import queries
from personkort.store.quarantine import QuarantineItem, quarantine_rows

ROLE = "forvalter"


class StewardService:
    def __init__(
        self, engine: sa.Engine, audit: AuditLog, clock: Callable[[], dt.datetime]
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

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

    def reviews(self, worker: Caseworker) -> list[sa.Row]:
        """The served night's uncertain pairs, with the evidence side by side."""
        self._role(worker)
        with store_errors():
            return queries.reviews(self.engine, queries.served_night(self.engine))

    def decide(
        self, worker: Caseworker, record_a: str, record_b: str, same: bool, reason: str | None
    ) -> None:
        """A steward's ruling on a pair: stored with its audit event, or not at all."""
        self._role(worker)
        if record_a == record_b:
            raise Invalid("samme_post", "A record cannot be ruled on against itself.")
        trace = uuid.uuid4().hex
        details = {
            "record_a": record_a,
            "record_b": record_b,
            "same": same,
            "reason": reason,
            "trace_id": trace,
        }
        with store_errors(trace), begin_write(self.engine) as conn:
            queries.add_decision(conn, record_a, record_b, same, worker.sub, reason, self.clock())
            events.record(
                self.audit, "steward_decision", worker, details, trace_id=trace, conn=conn
            )

    @staticmethod
    def _role(worker: Caseworker) -> None:
        if ROLE not in worker.roles:
            raise missing_role(ROLE)
