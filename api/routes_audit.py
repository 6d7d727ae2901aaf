"""Auditors: who looked at whom, denials, kode 6 / skjermet use, policy versions, export."""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import caseworker, require_role, services
from api.problems import Id, ProblemError, responses
from personkort.audit import AuditLog, verify
from personkort.audit.export import to_cef
from personkort.ident import normalise
from personkort.policy.model import Policy
from personkort.store import models as m
from personkort.store.queries import aware

router = APIRouter(prefix="/audit", tags=["auditors"])


class EventSearch(BaseModel):
    """Filters; the identity number travels in the body, never in a URL."""

    model_config = ConfigDict(extra="forbid")
    ident: str | None = Field(default=None, max_length=40)
    card_id: str | None = Field(default=None, max_length=24)
    caseworker: str | None = Field(default=None, max_length=40)
    kind: str | None = Field(default=None, max_length=32)
    decision: Literal["permit", "partial", "deny", "not_found"] | None = None
    privileged: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=2**62)  # a database integer, whatever the backend
    format: Literal["json", "cef"] = "json"


def activate(engine: sa.Engine, audit: AuditLog, policy: Policy) -> None:
    """Record a policy version the first time it runs: an audit event and its files, for diffs."""
    with engine.begin() as conn:
        known = conn.scalar(
            sa.select(m.PolicyVersionRow.version).where(
                m.PolicyVersionRow.version == policy.version
            )
        )
        if known:
            return
        conn.execute(
            sa.insert(m.PolicyVersionRow).values(
                version=policy.version, files=policy.files, activated_at=dt.datetime.now(dt.UTC)
            )
        )
    audit.append(
        "policy_activated",
        {
            "caseworker": {"sub": "system"},
            "policy_version": policy.version,
            "files": sorted(policy.files),
        },
    )


def _auditor(request: Request) -> None:
    require_role(caseworker(request), "revisor")


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
            "description": "Events as JSON, or CEF lines (format: cef) as text",
            "content": {"application/json": {}, "text/plain": {"schema": {"type": "string"}}},
        },
    },
)
def events(body: EventSearch, request: Request) -> Any:
    """Events by person, caseworker, decision, privileged use or kind; JSON or CEF."""
    _auditor(request)
    svc = services(request)
    found = svc.audit.events(  # type: ignore[attr-defined]
        ident=normalise(body.ident) if body.ident else None,
        card_id=body.card_id,
        caseworker=body.caseworker,
        kind=body.kind,
        decision=body.decision,
        privileged=body.privileged,
        since=_stamp(body.since),
        until=_stamp(body.until),
        limit=body.limit,
        offset=body.offset,
    )
    for event in found:
        event["data"].pop("ident_sealed", None)  # findable by HMAC; readable only with the key
    if body.format == "cef":
        return PlainTextResponse(to_cef(found))
    return found


@router.get("/verify", responses=responses(401, 403, 503))
def verify_log(request: Request) -> dict[str, Any]:
    """Recompute the chain and every checkpoint now."""
    _auditor(request)
    svc = services(request)
    result = verify(svc.engine, svc.audit.keys.public)  # type: ignore[attr-defined]
    return {
        "ok": result.ok,
        "events": result.events,
        "checkpoints": result.checkpoints,
        "first_bad_seq": result.first_bad_seq,
        "problem": result.problem,
    }


@router.get("/events/{seq}/proof", responses=responses(401, 403, 404, 503))
def proof(seq: Id, request: Request) -> dict[str, Any]:
    """The event, its Merkle audit path and the signed checkpoint that covers it."""
    _auditor(request)
    try:
        return services(request).audit.prove(seq)  # type: ignore[attr-defined,no-any-return]
    except (LookupError, IndexError):
        raise ProblemError(
            404, "ukjent_hendelse", "Not Found", "No checkpoint covers it yet."
        ) from None


@router.get("/policies", responses=responses(401, 403, 503))
def policies(request: Request) -> list[dict[str, Any]]:
    _auditor(request)
    with services(request).engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.PolicyVersionRow.version, m.PolicyVersionRow.activated_at).order_by(
                m.PolicyVersionRow.activated_at
            )
        ).all()
    return [{"version": v, "activated_at": aware(a)} for v, a in rows]


@router.get(
    "/policies/{old}/diff/{new}",
    response_class=PlainTextResponse,
    responses=responses(401, 403, 404, 503),
)
def policy_diff(old: str, new: str, request: Request) -> PlainTextResponse:
    """What changed between two policy versions, as a unified diff of their files."""
    _auditor(request)
    with services(request).engine.connect() as conn:
        files = dict(
            conn.execute(
                sa.select(m.PolicyVersionRow.version, m.PolicyVersionRow.files).where(
                    m.PolicyVersionRow.version.in_([old, new])
                )
            ).all()
        )
    if old not in files or new not in files:
        raise ProblemError(404, "ukjent_policy", "Not Found", "No such policy version.")
    lines: list[str] = []
    for name in sorted(set(files[old]) | set(files[new])):
        lines += difflib.unified_diff(
            files[old].get(name, "").splitlines(keepends=True),
            files[new].get(name, "").splitlines(keepends=True),
            f"{old[:12]}/{name}",
            f"{new[:12]}/{name}",
        )
    return PlainTextResponse("".join(lines))
