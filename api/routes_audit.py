"""Auditors: who looked at whom, denials, kode 6 / skjermet use, policy versions, export, and a
person's access report (GDPR art. 15)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import caseworker, services
from api.problems import Id, responses
from personkort.services.audit_queries import AccessReport, EventFilter

router = APIRouter(prefix="/audit", tags=["auditors"])


class EventSearch(BaseModel):
    """Filters; the identity number travels in the body, never in a URL."""

    model_config = ConfigDict(extra="forbid")
    ident: str | None = Field(default=None, max_length=40)
    card_id: str | None = Field(default=None, pattern=r"^pk-[0-9a-f]{16}$")
    caseworker: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=32)
    decision: Literal["permit", "partial", "deny", "not_found", "moved"] | None = None
    privileged: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=2**62)  # a database integer, whatever the backend
    format: Literal["json", "cef", "csv"] = "json"


class AccessReportRequest(BaseModel):
    """The person's number travels in the body, never in a URL."""

    model_config = ConfigDict(extra="forbid")
    ident: str = Field(min_length=1, max_length=40)


class WithheldOut(BaseModel):
    field: str
    rule: str
    reason: str


class AccessRowOut(BaseModel):
    seq: int
    at: str
    kind: str
    office: str | None
    employer: str | None
    roles: list[str]
    outcome: str | None
    reason_codes: list[str]
    withheld: list[WithheldOut]
    policy_version: str | None
    purpose: str | None
    privileged_use: list[str]
    consents_in_force: list[str]
    trace_id: str | None


class ConsentChangeOut(BaseModel):
    seq: int
    at: str
    kind: str
    consent_id: int | None
    scope: str | None
    office: str | None
    valid_from: str | None
    valid_to: str | None
    form_reference: str | None


class AccessReportOut(BaseModel):
    """Every use of the person's card: office, employer and role, not the caseworker."""

    made_at: str
    card_ids: list[str]
    rows: list[AccessRowOut]
    consents: list[ConsentChangeOut]

    @classmethod
    def of(cls, report: AccessReport) -> AccessReportOut:
        return cls.model_validate(report, from_attributes=True)


def _stamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@router.post(
    "/events",
    responses={
        **responses(401, 403, 422, 503),
        200: {
            "description": "Events as JSON, CEF lines (format: cef) as text, or CSV (format: csv)",
            "content": {
                "application/json": {},
                "text/plain": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
)
def events(body: EventSearch, request: Request) -> Any:
    """Events by person, caseworker, decision, privileged use or kind; JSON, CEF or CSV."""
    auditing = services(request).auditing
    found = auditing.events(
        caseworker(request),
        EventFilter(
            ident=body.ident,
            card_id=body.card_id,
            caseworker=body.caseworker,
            kind=body.kind,
            decision=body.decision,
            privileged=body.privileged,
            since=_stamp(body.since),
            until=_stamp(body.until),
            limit=body.limit,
            offset=body.offset,
        ),
    )
    if body.format == "cef":
        return PlainTextResponse(auditing.cef(found))
    if body.format == "csv":
        return Response(auditing.csv(found), media_type="text/csv; charset=utf-8")
    return found


@router.post("/access-report", responses=responses(401, 403, 422, 503))
def access_report(body: AccessReportRequest, request: Request) -> AccessReportOut:
    """Every use of one person's card, found by any of its numbers (GDPR art. 15)."""
    report = services(request).auditing.access_report(caseworker(request), body.ident)
    return AccessReportOut.of(report)


@router.get("/verify", responses=responses(401, 403, 503))
def verify_log(request: Request) -> dict[str, Any]:
    """Recompute the chain and every checkpoint now."""
    return services(request).auditing.verify(caseworker(request))


@router.get("/events/{seq}/proof", responses=responses(401, 403, 404, 503))
def proof(seq: Id, request: Request) -> dict[str, Any]:
    """The event, its Merkle audit path and the signed checkpoint that covers it."""
    return services(request).auditing.proof(caseworker(request), seq)


@router.get("/policies", responses=responses(401, 403, 503))
def policies(request: Request) -> list[dict[str, Any]]:
    return services(request).auditing.policies(caseworker(request))


@router.get(
    "/policies/{old}/diff/{new}",
    response_class=PlainTextResponse,
    responses=responses(401, 403, 404, 503),
)
def policy_diff(old: str, new: str, request: Request) -> PlainTextResponse:
    """What changed between two policy versions, as a unified diff of their files."""
    return PlainTextResponse(services(request).auditing.policy_diff(caseworker(request), old, new))
