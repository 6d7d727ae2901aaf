"""Consents: registered, withdrawn and searched by the caseworkers of the office given them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import caseworker, services
from api.problems import Id, responses
from api.schemas import ConsentIn, ConsentOut, ConsentSearch, PurposeOnly
from personkort.services.consents import ConsentView

router = APIRouter(tags=["consents"])


def _out(view: ConsentView) -> ConsentOut:
    record = view.record
    return ConsentOut(
        **{f: getattr(record, f) for f in ConsentOut.model_fields if f != "in_force"},
        in_force=view.in_force,
    )


@router.post(
    "/consents",
    response_model=ConsentOut,
    status_code=201,
    responses=responses(401, 403, 404, 422, 503),
)
def register(body: ConsentIn, request: Request) -> ConsentOut:
    worker = caseworker(request)
    view = services(request).consents.register(
        worker,
        ident=body.ident,
        scope=body.scope,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        form_reference=body.form_reference,
        purpose=body.purpose,
    )
    return _out(view)


@router.post(
    "/consents/{consent_id}/withdraw",
    response_model=ConsentOut,
    responses=responses(401, 403, 404, 422, 503),
)
def withdraw(consent_id: Id, request: Request, body: PurposeOnly | None = None) -> ConsentOut:
    worker = caseworker(request)
    purpose = body.purpose if body else None
    return _out(services(request).consents.withdraw(worker, consent_id, purpose))


@router.post(
    "/consents/search",
    response_model=list[ConsentOut],
    responses=responses(401, 403, 404, 422, 503),
)
def search(body: ConsentSearch, request: Request) -> list[ConsentOut]:
    worker = caseworker(request)
    return [_out(v) for v in services(request).consents.search(worker, body.ident, body.purpose)]
