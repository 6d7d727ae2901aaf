"""What the routes need, built once by the app factory: store, policy, tokens, audit, clock."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from api.auth import TokenVerifier
from api.settings import Settings
from personkort.policy.load import PolicyError, load_policy
from personkort.policy.model import Policy
from personkort.store.served import ServedCards

log = logging.getLogger("personkort.api")


@dataclass
class PolicyHolder:
    """The running policy version. A reload that fails keeps the running version."""

    folder: str | None
    on_activate: Callable[[Policy], None]
    policy: Policy | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reload(self) -> Policy | None:
        with self._lock:
            try:
                loaded = load_policy(self.folder)
            except (PolicyError, OSError) as exc:
                self.error = str(exc)
                log.error("policy refused, keeping version %s: %s", self.version, exc)
                return self.policy
            if self.policy is None or loaded.version != self.policy.version:
                self.on_activate(loaded)
                self.policy = loaded
            self.error = None
            return self.policy

    @property
    def version(self) -> str | None:
        return self.policy.version if self.policy else None


@dataclass
class Services:
    settings: Settings
    engine: sa.Engine
    tokens: TokenVerifier
    policies: PolicyHolder
    audit: object  # personkort.audit.AuditLog
    cards: ServedCards
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
