"""Policy activation: the running policy version, and an audit event the first time each runs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa

from personkort.audit import AuditLog, AuditUnavailable, begin_write
from personkort.policy.load import PolicyError, load_policy
from personkort.policy.model import Policy
from personkort.services.errors import Unavailable
from personkort.store import policies as repository

log = logging.getLogger("personkort.policy")


class PolicyHolder:
    """The running policy version. A reload that fails keeps the running version; a version
    runs only once its activation and audit event are stored together."""

    def __init__(
        self,
        folder: str | None,
        engine: sa.Engine,
        audit: AuditLog,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.folder = folder
        self.engine = engine
        self.audit = audit
        self.clock = clock
        self.policy: Policy | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def reload(self) -> Policy | None:
        with self._lock:
            try:
                loaded = load_policy(self.folder)
            except (PolicyError, OSError) as exc:
                self.error = str(exc)
                log.error("policy refused, keeping version %s: %s", self.version, exc)
                return self.policy
            if self.policy is None or loaded.version != self.policy.version:
                try:
                    self._activate(loaded)
                except sa.exc.IntegrityError:
                    pass  # another worker recorded this version (and its event) a moment ago
                except (AuditUnavailable, sa.exc.SQLAlchemyError) as exc:
                    self.error = f"activation not recorded: {type(exc).__name__}"
                    log.error("policy %s not activated: %s", loaded.version[:12], self.error)
                    return self.policy
                self.policy = loaded
            self.error = None
            return self.policy

    def current(self) -> Policy:
        """The running policy; none means no decision can be made: fail closed."""
        current = self.policy or self.reload()
        if current is None:
            raise Unavailable("policy_utilgjengelig", "No valid policy is loaded.")
        return current

    @property
    def version(self) -> str | None:
        return self.policy.version if self.policy else None

    def _activate(self, policy: Policy) -> None:
        """The version and its event in one transaction (holding the write lock from its
        start), or neither."""
        with begin_write(self.engine) as conn:
            if not repository.record_version(conn, policy.version, policy.files, self.clock()):
                return
            self.audit.append_in(
                conn,
                "policy_activated",
                {
                    "caseworker": {"sub": "system"},
                    "policy_version": policy.version,
                    "files": sorted(policy.files),
                },
            )
