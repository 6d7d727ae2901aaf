"""Consents: registered, withdrawn and listed by the caseworkers of the office given them."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.audit_events import record_event
from api.deps import caseworker, policy, require_role, services
from api.problems import Id, ProblemError, responses
from api.schemas import ConsentIn, ConsentOut, ConsentSearch
from personkort import consents as consent_store
from personkort.consents import ConsentError, ConsentRecord
from personkort.ident import IdentError, normalise, parse
from personkort.store import queries

router = APIRouter(tags=["consents"])


def _out(record: ConsentRecord, office: str, svc_now: object) -> ConsentOut:
    return ConsentOut(
        **{f: getattr(record, f) for f in ConsentOut.model_fields if f != "in_force"},
        in_force=record.as_policy_consent().in_force(office, svc_now),  # type: ignore[arg-type]
    )


def _known_person(request: Request, raw: str) -> tuple[str, set[str]]:
    svc = services(request)
    try:
        ident = parse(raw).value
    except IdentError as exc:
        raise ProblemError(
            422, "ugyldig_ident", "Unprocessable", f"identity number: {exc.problem.value}"
        ) from None
    card_id = queries.card_for_ident(svc.engine, ident)
    if card_id is None:
        raise ProblemError(404, "ukjent_person", "Not Found", "No card for that person.")
    from personkort.store.cards import load_card

    card = load_card(svc.engine, card_id)
    return ident, card.all_idents if card else {ident}


@router.post(
    "/consents",
    response_model=ConsentOut,
    status_code=201,
    responses=responses(401, 403, 404, 422, 503),
)
def register(body: ConsentIn, request: Request) -> ConsentOut:
    svc = services(request)
    worker = caseworker(request)
    require_role(worker, "veileder")
    current = policy(svc)
    ident, _ = _known_person(request, body.ident)
    now = svc.clock()
    try:
        record = consent_store.register(
            svc.engine,
            ident=ident,
            office=worker.office,
            scope=body.scope,
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            form_reference=body.form_reference,
            by=worker.sub,
            scopes=current.consent_scopes,
            max_months=current.consent_max_months,
            now=now,
        )
    except ConsentError as exc:
        raise ProblemError(422, exc.code, "Unprocessable", str(exc)) from None
    record_event(
        svc,
        "consent_registered",
        worker,
        ident=ident,
        details={
            "consent_id": record.id,
            "scope": record.scope,
            "office": record.office,
            "valid_from": record.valid_from.isoformat(),
            "valid_to": record.valid_to.isoformat(),
            "form_reference": record.form_reference,
        },
    )
    return _out(record, worker.office, now)


@router.post(
    "/consents/{consent_id}/withdraw",
    response_model=ConsentOut,
    responses=responses(401, 403, 404, 503),
)
def withdraw(consent_id: Id, request: Request) -> ConsentOut:
    svc = services(request)
    worker = caseworker(request)
    require_role(worker, "veileder")
    record = consent_store.get(svc.engine, consent_id)
    if record is None or record.office != worker.office:
        raise ProblemError(404, "ukjent_samtykke", "Not Found", "No such consent at your office.")
    now = svc.clock()
    record = consent_store.withdraw(svc.engine, consent_id, by=worker.sub, now=now)
    ident = consent_store.person_ident_of(svc.engine, consent_id)
    record_event(
        svc,
        "consent_withdrawn",
        worker,
        ident=ident,
        details={"consent_id": consent_id, "scope": record.scope},
    )
    return _out(record, worker.office, now)


@router.post(
    "/consents/search",
    response_model=list[ConsentOut],
    responses=responses(401, 403, 404, 422, 503),
)
def search(body: ConsentSearch, request: Request) -> list[ConsentOut]:
    svc = services(request)
    worker = caseworker(request)
    require_role(worker, "veileder")
    _, idents = _known_person(request, normalise(body.ident))
    now = svc.clock()
    return [
        _out(r, worker.office, now)
        for r in consent_store.for_idents(svc.engine, idents)
        if r.office == worker.office
    ]
