"""Page sessions: signing out ends the session everywhere, not only in the one browser.

A session is a signed token with an id (``jti``). Signing out records the id, with its audit
event, in one transaction; every page request asks whether its session has ended. A store that
cannot answer ends nothing and opens nothing: the page is refused (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from personkort.audit import AuditLog, begin_write
from personkort.policy.engine import Caseworker
from personkort.services import events
from personkort.services.errors import new_trace, store_errors
from personkort.store import Engine, StoreError
from personkort.store import sessions as repository


class SessionService:
    def __init__(self, engine: Engine, audit: AuditLog, clock: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock

    def end(self, worker: Caseworker, jti: str, expires_at: dt.datetime) -> None:
        trace = new_trace()
        with store_errors(trace), begin_write(self.engine) as conn:
            repository.end(conn, jti, expires_at, self.clock())
            events.record(
                self.audit,
                "session_ended",
                worker,
                {"trace_id": trace},
                trace_id=trace,
                conn=conn,
            )

    def ended(self, jti: str) -> bool:
        """True when the session was signed out, or when the store cannot say (fail closed)."""
        try:
            return repository.ended(self.engine, jti)
        except StoreError:
            return True
