"""Readiness: may this process take lookups now? The store answers in time, the audit log can
be read and written to, and a policy is active. Liveness (the process runs) is separate: a
load balancer stops sending work to a process that is not ready, but does not restart it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from personkort.audit import AuditLog
from personkort.services.policies import PolicyHolder
from personkort.store import Engine, StoreError
from personkort.store.deadline import Deadline
from personkort.store.queries import served_night

log = logging.getLogger("personkort.health")


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    served_night: int | None = None
    policy_version: str | None = None


class HealthService:
    def __init__(
        self, engine: Engine, audit: AuditLog, policies: PolicyHolder, deadline: Deadline
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.policies = policies
        self.deadline = deadline
        self._last: bool | None = None

    def readiness(self) -> Readiness:
        checks: dict[str, str] = {}
        night = None
        try:
            night = self.deadline.run(lambda: served_night(self.engine))
            checks["store"] = "ok" if night is not None else "no night is served yet"
        except StoreError as exc:
            checks["store"] = f"unavailable ({type(exc).__name__})"
        try:
            self.deadline.run(self.audit.last_seq)
            checks["audit_log"] = "closed" if self.audit.closed else "ok"
        except StoreError as exc:
            checks["audit_log"] = f"unavailable ({type(exc).__name__})"
        version = self.policies.version
        checks["policy"] = "ok" if version else "no policy is active (see the log)"
        ready = all(v == "ok" for v in checks.values())
        if ready != self._last:  # each change of state once in the log, never per probe
            (log.warning if not ready else log.info)(
                "readiness: %s",
                "ready" if ready else ", ".join(f"{k}: {v}" for k, v in checks.items()),
            )
            self._last = ready
        return Readiness(ready, checks, night, version)
