"""Looking up a card: identity number in the body (never in a URL), audited before it leaves."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from api.audit_events import record_lookup
from api.deps import caseworker, policy, services
from api.problems import ProblemError, responses
from api.schemas import CardResponse, LookupRequest
from api.services import Services
from personkort.ident import normalise
from personkort.policy.engine import Caseworker, evaluate
from personkort.store import queries
from personkort.store.served import Found

router = APIRouter(tags=["personkort"])


def store_unavailable() -> ProblemError:
    return ProblemError(
        503, "lager_utilgjengelig", "Service Unavailable", "The card store is unavailable."
    )


@router.post(
    "/personkort",
    response_model=CardResponse,
    responses=responses(401, 403, 404, 422, 503),
    summary="Look up a person's card by any current or earlier identity number",
)
def lookup(body: LookupRequest, request: Request) -> JSONResponse:
    svc = services(request)
    worker = caseworker(request)
    ident = normalise(body.ident)
    try:
        found = svc.cards.by_ident(ident)
    except sa.exc.SQLAlchemyError:
        raise store_unavailable() from None
    return _answer(svc, worker, found, ident, body.purpose)


@router.get(
    "/personkort/{card_id}",
    response_model=CardResponse,
    responses={**responses(401, 403, 404, 503), 308: {"description": "The card was merged"}},
    summary="Open a card by its id (bookmarks); a merged-away id redirects",
)
def by_card_id(card_id: str, request: Request, purpose: str | None = None) -> Any:
    svc = services(request)
    worker = caseworker(request)
    try:
        found = svc.cards.by_card_id(card_id)
        moved = [] if found.card else queries.successors(svc.engine, card_id)
    except sa.exc.SQLAlchemyError:
        raise store_unavailable() from None
    if len(moved) == 1:
        return RedirectResponse(f"/api/v1/personkort/{moved[0]}", status_code=308)
    return _answer(svc, worker, found, None, purpose)


def _answer(
    svc: Services, worker: Caseworker, found: Found, ident: str | None, purpose: str | None
) -> JSONResponse:
    """Decide, audit, then answer: the card leaves only after its event is stored. The body is
    serialised directly (the view is JSON-ready), not re-validated against the response model."""
    current = policy(svc)
    trace = uuid.uuid4().hex
    card, on_file = found.card, found.consents
    if card is None:
        record_lookup(
            svc,
            worker,
            card_id=None,
            ident=ident,
            decision=None,
            policy_version=current.version,
            purpose=purpose,
            trace_id=trace,
        )
        raise ProblemError(404, "ukjent_person", "Not Found", "No card for that person.", trace)
    now = svc.clock()
    decision = evaluate(
        worker, card, [c.as_policy_consent() for c in on_file], current, purpose=purpose, now=now
    )
    record_lookup(
        svc,
        worker,
        card_id=card.card_id,
        ident=ident,
        decision=decision,
        policy_version=current.version,
        purpose=purpose,
        trace_id=trace,
    )
    if not decision.permitted:
        raise ProblemError(
            403, decision.reason_codes[0], "Forbidden", decision.message or "", trace
        )
    assert decision.view is not None
    mine = [c for c in on_file if c.office == worker.office]
    body = {
        **decision.view,
        "consents": [
            {
                "id": c.id,
                "scope": c.scope,
                "valid_from": c.valid_from.isoformat(),
                "valid_to": c.valid_to.isoformat(),
                "in_force": c.as_policy_consent().in_force(worker.office, now),
                "form_reference": c.form_reference,
            }
            for c in mine
        ],
        "policy_version": current.version,
        "trace_id": trace,
    }
    return JSONResponse(body)
