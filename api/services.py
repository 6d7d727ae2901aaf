"""What the routes need, built once by the app factory: the application services and tokens."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import TokenVerifier
from api.settings import Settings
from personkort.audit import AuditLog
from personkort.services.audit_queries import AuditQueryService
from personkort.services.consents import ConsentService
from personkort.services.folkeregister import FeedEventService
from personkort.services.health import HealthService
from personkort.services.lookup import LookupService
from personkort.services.policies import PolicyHolder
from personkort.services.sessions import SessionService
from personkort.services.stewardship import StewardService
from personkort.store import Engine
from personkort.store.served import ServedCards


@dataclass
class Services:
    settings: Settings
    engine: Engine
    tokens: TokenVerifier
    policies: PolicyHolder
    audit: AuditLog
    cards: ServedCards
    lookup: LookupService
    consents: ConsentService
    stewardship: StewardService
    auditing: AuditQueryService
    health: HealthService
    sessions: SessionService
    feed_events: FeedEventService
