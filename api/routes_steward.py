"""Data stewards: nights with their counts, quarantine, the review queue and decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import caseworker, services
from api.problems import Id, responses
from api.schemas import DecisionIn, DeferralOut, NightOut, QuarantineOut, ReviewOut, RulingOut

router = APIRouter(prefix="/steward", tags=["stewards"])


@router.get("/nights", response_model=list[NightOut], responses=responses(401, 403, 503))
def nights(request: Request) -> list[NightOut]:
    return [NightOut(**n) for n in services(request).stewardship.nights(caseworker(request))]


@router.get("/nights/{night_id}", response_model=NightOut, responses=responses(401, 403, 404, 503))
def night(night_id: Id, request: Request) -> NightOut:
    return NightOut(**services(request).stewardship.night(caseworker(request), night_id))


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
    rows = services(request).stewardship.quarantine(
        caseworker(request), night_id, limit=limit, offset=offset
    )
    return [
        QuarantineOut(register_name=q.register, location=q.location, reason=q.reason, raw=q.raw)
        for q in rows
    ]


@router.get("/reviews", response_model=list[ReviewOut], responses=responses(401, 403, 503))
def reviews(request: Request) -> list[ReviewOut]:
    """The served night's uncertain pairs, with the evidence and any ruling or "later" on
    each; ``ruling_id`` is what a decision passes as ``seen``."""
    return [
        ReviewOut(
            id=p.id,
            record_key=p.record_key,
            candidate_key=p.candidate_key,
            score=p.score,
            evidence=p.evidence,
            state=p.state,  # type: ignore[arg-type]
            ruling_id=p.seen,
            ruling=RulingOut(
                id=p.ruling.id,
                same=p.ruling.same,
                steward=p.ruling.steward,
                reason=p.ruling.reason,
                decided_at=p.ruling.decided_at,
            )
            if p.ruling
            else None,
            deferral=DeferralOut(
                steward=p.deferral.steward, at=p.deferral.at, comment=p.deferral.comment
            )
            if p.deferral
            else None,
        )
        for p in services(request).stewardship.queue(caseworker(request))
    ]


@router.post("/decisions", status_code=201, responses=responses(401, 403, 409, 422, 503))
def decide(body: DecisionIn, request: Request) -> dict[str, Any]:
    """A steward's ruling: binds every later night, and is an audit event. "later" leaves the
    pair in the queue with the comment. With ``seen``, a pair ruled on since is 409
    ``allerede_avgjort``, and nothing is stored."""
    settled = services(request).stewardship.settle(
        caseworker(request),
        body.record_a,
        body.record_b,
        body.answer,
        body.reason,
        seen=body.seen,
    )
    return {
        "record_a": body.record_a,
        "record_b": body.record_b,
        "outcome": settled.outcome,
        "same": None if settled.ruling is None else settled.ruling.same,
        "ruling_id": None if settled.ruling is None else settled.ruling.id,
        "trace_id": settled.trace_id,
        "effective": "stays in the queue" if settled.ruling is None else "next night",
    }
