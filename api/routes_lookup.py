"""Looking up a card: identity number and purpose in the body (never in a URL)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse

from api.deps import caseworker, services
from api.problems import ProblemError, responses
from api.schemas import CardOpen, CardResponse, LookupRequest
from personkort.services.lookup import Moved

router = APIRouter(tags=["personkort"])
# A card id is "pk-" and 16 hex digits (personkort/reconcile/card_ids.py); anything else is
# refused before it reaches a service or the audit log.
CardId = Annotated[str, Path(pattern=r"^pk-[0-9a-f]{16}$")]


@router.post(
    "/personkort",
    response_model=CardResponse,
    responses=responses(401, 403, 404, 422, 429, 503),
    summary="Look up a person's card by any current or earlier identity number",
)
def lookup(body: LookupRequest, request: Request) -> JSONResponse:
    # The view is JSON-ready: serialised directly, not re-validated against the model.
    worker = caseworker(request)
    return JSONResponse(services(request).lookup.by_ident(worker, body.ident, body.purpose))


@router.get(
    "/personkort/{card_id}",
    response_model=CardResponse,
    responses={**responses(400, 401, 403, 404, 429, 503), 308: {"description": "Merged"}},
    summary="Open a card by its id (bookmarks); a merged-away id redirects",
)
def by_card_id(card_id: CardId, request: Request) -> Any:
    if "purpose" in request.query_params:
        raise ProblemError(
            400,
            "formal_i_url",
            "Bad Request",
            "A purpose never travels in a URL: POST it to /personkort/{card_id}/open.",
        )
    worker = caseworker(request)
    return _render(services(request).lookup.by_card_id(worker, card_id, None), request, "")


@router.post(
    "/personkort/{card_id}/open",
    response_model=CardResponse,
    responses={**responses(401, 403, 404, 422, 429, 503), 308: {"description": "Merged"}},
    summary="Open a card by its id with a stated purpose (kode 6 / skjermet)",
)
def open_card(card_id: CardId, body: CardOpen, request: Request) -> Any:
    worker = caseworker(request)
    found = services(request).lookup.by_card_id(worker, card_id, body.purpose)
    return _render(found, request, "/open")


def _render(found: dict[str, Any] | Moved, request: Request, suffix: str) -> Any:
    if isinstance(found, Moved):
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(
            f"/api/v1/personkort/{found.card_id}{suffix}{query}", status_code=308
        )
    return JSONResponse(found)
