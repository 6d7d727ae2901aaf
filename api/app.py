"""The app factory: the edge that wires store, policy, tokens and audit log into the routes."""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from cryptography.exceptions import InvalidTag
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from api import (
    routes_audit,
    routes_consents,
    routes_folkeregister,
    routes_lookup,
    routes_steward,
)
from api.auth import TokenVerifier
from api.middleware import check_keys, install_middleware
from api.problems import (
    PROBLEM_JSON,
    Problem,
    ProblemError,
    handle_problem,
    handle_service_error,
    problem_response,
)
from api.services import Services
from api.settings import Settings
from personkort.audit import AuditLog
from personkort.services import ServiceError
from personkort.services.audit_queries import AuditQueryService
from personkort.services.consents import ConsentService
from personkort.services.folkeregister import FeedEventService
from personkort.services.health import HealthService
from personkort.services.lookup import LookupService
from personkort.services.policies import PolicyHolder
from personkort.services.ratelimit import LookupLimiter
from personkort.services.sessions import SessionService
from personkort.services.stewardship import StewardService
from personkort.store import Engine, StoreError, open_engine
from personkort.store.crypto import KeyRingError, key_ring
from personkort.store.deadline import Deadline
from personkort.store.queries import successors
from personkort.store.served import ServedCards
from web.app import install_web

log = logging.getLogger("personkort.api")
GC_THRESHOLDS = (50_000, 50, 1_000)


def create_app(settings: Settings | None = None, *, audit: AuditLog | None = None) -> FastAPI:
    settings = settings or Settings()
    # Every key first: a missing or malformed one stops the start (naming them all), not
    # every later lookup; in development mode the development keys are made here, once.
    check_keys(settings, key_ring)
    engine = open_engine(settings.store_url, timeout=settings.store_timeout_seconds)
    audit = audit or AuditLog.from_settings(engine, data_dir=settings.data_dir)
    services = build_services(settings, engine, audit)
    policies = services.policies

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The card cache holds millions of small objects; with Python's default thresholds the
        # collector walks them all every few seconds under load, a 90-170 ms pause measured
        # here, which alone set the p99. Young garbage is still collected as before.
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()  # what startup made (modules, policy) is never garbage: skip it for good
        policies.reload()
        yield
        audit.close()
        engine.dispose()

    app = FastAPI(
        title="personkort",
        version="1.0.0",
        description="One person card per real person, shown as the caseworker may see it.",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served by the pages with the vendored Swagger UI (web/app.py)
        redoc_url=None,
    )
    install_middleware(app, settings)
    app.state.services = services
    app.add_exception_handler(ProblemError, handle_problem)
    app.add_exception_handler(ServiceError, handle_service_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(InvalidTag, _store_unavailable)  # a key missing from the ring
    app.add_exception_handler(KeyRingError, _store_unavailable)
    routers = (routes_lookup, routes_consents, routes_steward, routes_audit, routes_folkeregister)
    for module in routers:
        app.include_router(module.router, prefix="/api/v1")
    install_web(app, services)

    @app.get("/api/v1/health", tags=["health"])
    def health() -> dict[str, str | None]:
        """Liveness: the process runs (a restart will not help anything else)."""
        return {"status": "ok", "policy_version": policies.version}

    @app.get(
        "/api/v1/ready",
        tags=["health"],
        responses={503: {"description": "Not ready: the failing checks, in words"}},
    )
    def ready() -> JSONResponse:
        """Readiness: the store answers in time, the audit log can be read, a policy is active."""
        state = services.health.readiness()
        body = {
            "status": "ready" if state.ready else "not_ready",
            "checks": state.checks,
            "served_night": state.served_night,
            "policy_version": state.policy_version,
        }
        return JSONResponse(body, status_code=200 if state.ready else 503)

    def openapi() -> dict[str, object]:
        """The published document: every error is problem+json, 422 included."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            problem_ref = {"$ref": "#/components/schemas/Problem"}
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    # The request guard's answers (api/middleware.py), before any route.
                    guard = ["431"] + (["400", "413", "415"] if "requestBody" in operation else [])
                    for status in guard:
                        operation.setdefault("responses", {}).setdefault(
                            status, {"description": "Refused by the request guard"}
                        )
                    for status, response in operation.get("responses", {}).items():
                        if status.startswith(("4", "5")):
                            response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def build_services(settings: Settings, engine: Engine, audit: AuditLog) -> Services:
    """Every application service, wired once: the one place that knows them all."""
    clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
    policies = PolicyHolder(settings.policy_dir, engine, audit, clock)
    cards = ServedCards(
        engine, size=settings.card_cache_size, deadline=Deadline(settings.store_timeout_seconds)
    )
    limiter = LookupLimiter(settings.lookups_per_minute)
    return Services(
        settings=settings,
        engine=engine,
        tokens=TokenVerifier(settings),
        policies=policies,
        audit=audit,
        cards=cards,
        lookup=LookupService(
            cards, policies, audit, limiter, clock, lambda card_id: successors(engine, card_id)
        ),
        consents=ConsentService(engine, cards, policies, audit, clock, limiter),
        stewardship=StewardService(engine, audit, clock),
        auditing=AuditQueryService(engine, audit),
        health=HealthService(engine, audit, policies, Deadline(settings.store_timeout_seconds, 2)),
        sessions=SessionService(engine, audit, clock),
        feed_events=FeedEventService(engine, audit, clock),
    )


async def _store_unavailable(_request: object, exc: Exception) -> JSONResponse:
    log.error("store error: %s", type(exc).__name__)
    return problem_response(
        Problem(
            type="https://personkort.nav.no/problems/lager_utilgjengelig",
            title="Service Unavailable",
            status=503,
            detail="The card store is unavailable.",
            code="lager_utilgjengelig",
        )
    )


async def _invalid_request(_request: object, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the input back: it may hold an identity number.
    # An unexpected field is named as such: its name is input too (it may be a number).
    fields = sorted(
        "unexpected field"
        if e.get("type") == "extra_forbidden"
        else ".".join(str(p) for p in e.get("loc", ())[1:])
        for e in exc.errors()
    )
    return problem_response(
        Problem(
            type="https://personkort.nav.no/problems/ugyldig_foresporsel",
            title="Unprocessable request",
            status=422,
            detail=f"invalid or missing fields: {', '.join(fields) or 'body'}",
            code="ugyldig_foresporsel",
        )
    )
