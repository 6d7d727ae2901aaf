"""Data stewards: nights with their counts, quarantine, the review queue and decisions."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request

from api.audit_events import record_event
from api.deps import caseworker, require_role, services
from api.problems import Id, ProblemError, responses
from api.schemas import DecisionIn, NightOut, QuarantineOut, ReviewOut
from personkort.store import models as m
from personkort.store import queries

router = APIRouter(prefix="/steward", tags=["stewards"])


def _steward(request: Request) -> Any:
    worker = caseworker(request)
    require_role(worker, "forvalter")
    return worker


@router.get("/nights", response_model=list[NightOut], responses=responses(401, 403, 503))
def nights(request: Request) -> list[NightOut]:
    _steward(request)
    svc = services(request)
    served = queries.served_night(svc.engine)
    return [NightOut(**n, served=n["id"] == served) for n in queries.nights(svc.engine)][::-1]


@router.get("/nights/{night_id}", response_model=NightOut, responses=responses(401, 403, 404, 503))
def night(night_id: Id, request: Request) -> NightOut:
    _steward(request)
    svc = services(request)
    served = queries.served_night(svc.engine)
    for n in queries.nights(svc.engine):
        if n["id"] == night_id:
            return NightOut(**n, served=night_id == served)
    raise ProblemError(404, "ukjent_natt", "Not Found", "No such night.")


@router.get(
    "/nights/{night_id}/quarantine",
    response_model=list[QuarantineOut],
    responses=responses(401, 403, 503),
)
def quarantine(
    night_id: Id,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[QuarantineOut]:
    _steward(request)
    rows = list(queries.quarantine(services(request).engine, night_id))
    limit = max(0, min(limit, 10_000))
    return [
        QuarantineOut(register_name=r, location=loc, reason=why)
        for r, loc, why in rows[offset : offset + limit]
    ]


@router.get("/reviews", response_model=list[ReviewOut], responses=responses(401, 403, 503))
def reviews(request: Request) -> list[ReviewOut]:
    """The served night's uncertain pairs, with the evidence side by side."""
    _steward(request)
    svc = services(request)
    night_id = queries.served_night(svc.engine)
    with svc.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.ReviewRow).where(m.ReviewRow.night_id == night_id).order_by(m.ReviewRow.id)
        ).all()
    return [
        ReviewOut(
            record_key=r.record_key,
            candidate_key=r.candidate_key,
            score=r.score,
            evidence=r.evidence,
        )
        for r in rows
    ]


@router.post("/decisions", status_code=201, responses=responses(401, 403, 422, 503))
def decide(body: DecisionIn, request: Request) -> dict[str, Any]:
    """A steward's ruling: binds every later night, and is an audit event."""
    worker = _steward(request)
    svc = services(request)
    if body.record_a == body.record_b:
        raise ProblemError(
            422, "samme_post", "Unprocessable", "A record cannot be ruled on against itself."
        )
    record_event(svc, "steward_decision", worker, ident=None, details=body.model_dump())
    queries.add_decision(
        svc.engine, body.record_a, body.record_b, body.same, worker.sub, body.reason
    )
    return {
        "record_a": body.record_a,
        "record_b": body.record_b,
        "same": body.same,
        "effective": "next night",
    }
