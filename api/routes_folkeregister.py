"""The population register pushes the day's events (service token with the role
``folkeregister``): each body a JSON array of events, every one stored once or quarantined."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from adapters.folkeregister import TooManyEvents, events_from_json
from api.deps import caseworker, services
from api.problems import ProblemError, responses

router = APIRouter(prefix="/folkeregister", tags=["folkeregister"])


class EventsReceipt(BaseModel):
    """What became of the batch: received = stored + duplicates + quarantined."""

    received: int
    stored: int
    duplicates: int
    quarantined: int
    trace_id: str


@router.post(
    "/hendelser",
    response_model=EventsReceipt,
    responses=responses(400, 401, 403, 413, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
        }
    },
)
async def receive(request: Request) -> EventsReceipt:
    """Events as ``shared/spec/folkeregister.md`` describes them. A bad event is quarantined
    with its reason and the rest are stored; a body that is not JSON at all is 400 (there is no
    event in it to keep)."""
    worker = caseworker(request)
    feed = services(request).feed_events
    # The store's work runs in the thread pool, as in the plain routes: a batch of a thousand
    # events must not hold this worker's event loop (every other request) for its half second.
    await run_in_threadpool(feed.admit, worker)  # the role before a byte of the body is read
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ProblemError(
            400, "ugyldig_json", "Not JSON", "The body is not JSON: a JSON array of events."
        ) from None
    try:
        batch = await run_in_threadpool(events_from_json, body, "api")
    except TooManyEvents as exc:
        raise ProblemError(413, "for_mange_hendelser", "Too many events", str(exc)) from None
    receipt = await run_in_threadpool(
        feed.receive, worker, batch.events, batch.quarantine, source="api"
    )
    return EventsReceipt.model_validate(receipt, from_attributes=True)
