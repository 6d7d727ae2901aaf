"""The data stewards' view: the nights, a night's report and quarantine, and the review queue.

Routes only parse, call ``StewardService`` (which checks the ``forvalter`` role) and render.
A decision is two steps: the pair's form (choice and a required comment) posts to a
confirmation page that changes nothing; its Bekreft posts the decision with the ruling the
steward saw, and a pair another steward decided in between is refused with who and when.
Record keys can hold an identity number (Infotrygd's key is one), so pairs are named in paths
by their queue id only, and the choice travels in form bodies.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.problems import status_of
from personkort.services import ServiceError
from personkort.services.stewardship import AlreadyDecided, ReviewPair
from web.context import checked_form, signed_in, web
from web.messages import MESSAGES
from web.session import WebUser

router = APIRouter(include_in_schema=False)
DAG_ID = "personkort_nightly"
QUARANTINE_PAGE = 200
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

STATUS = {
    "published": "Publisert",
    "refused": "Stoppet av en kontroll",
    "failed": "Feilet",
    "running": "Kjører",
    "staged": "Klar, ikke publisert",
    "unchanged": "Uendret",
}
OUTCOME = {
    "same": "samme person",
    "not_same": "ikke samme person",
    "later": "vurderes senere",
}
# What each evidence level says, and which way it pulled the score (scoring.py's weights).
EVIDENCE: dict[str, tuple[str, dict[str, tuple[str, int]]]] = {
    "ident": (
        "Fødselsnummer / D-nummer",
        {
            "equal": ("samme nummer", 1),
            "conflict": ("ulike gyldige numre", -1),
            "differ_unverified": ("ulike numre, det ene ikke bekreftet av staten", -1),
            "someone_elses": ("nummeret er en annen persons, sier ingenting", 0),
            "one_typo": ("numrene skiller seg med én tastefeil", 1),
            "d_and_f": ("D-nummer og fødselsnummer med samme fødselsdato", 1),
            "missing": ("nummer mangler på den ene eller begge", 0),
        },
    ),
    "birth": (
        "Fødselsdato",
        {
            "equal": ("samme fødselsdato", 1),
            "equal_typed": ("samme fødselsdato, lest av et feiltastet nummer", 1),
            "differ": ("ulik fødselsdato", -1),
            "missing": ("fødselsdato mangler", 0),
        },
    ),
    "surname": (
        "Etternavn",
        {
            "equal": ("samme etternavn", 1),
            "overlap": ("ett av etternavnene er felles", 1),
            "typo": ("etternavn med én skrivefeil", 1),
            "differ": ("ulikt etternavn", -1),
            "missing": ("etternavn mangler", 0),
        },
    ),
    "given": (
        "Fornavn",
        {
            "equal": ("samme fornavn", 1),
            "first": ("samme første fornavn, eller forkortet", 1),
            "typo": ("fornavn med én skrivefeil", 1),
            "differ": ("ulikt fornavn", -1),
            "missing": ("fornavn mangler", 0),
        },
    ),
    "address": (
        "Adresse",
        {
            "equal": ("samme adresse", 1),
            "postnr": ("samme postnummer, ulik adresse", 1),
            "differ": ("ulike postnumre", -1),
            "missing": ("adresse mangler", 0),
        },
    ),
}
# The steward's own refusals, in plain words (the rest are in web/messages.py).
STEWARD_MESSAGES = {
    "mangler_rolle": "Denne siden er for dataforvaltere (rollen forvalter). Du har ikke den "
    "rollen.",
    "ukjent_par": "Fant ikke paret i vurderingskøen for natten som vises nå. Køen kan ha endret "
    "seg etter en ny natt.",
    "allerede_avgjort": "En annen forvalter avgjorde paret etter at du åpnet det. Din avgjørelse "
    "er ikke lagret.",
    "kommentar_mangler": "Skriv en kommentar: hva avgjørelsen bygger på.",
    "kommentar_for_lang": "Kommentaren er for lang (høyst 1000 tegn).",
    "ukjent_utfall": "Velg samme person, ikke samme person eller senere.",
    "ugyldig_versjon": "Skjemaet er utdatert. Åpne paret på nytt.",
}
DIRECTION = {1: "trekker mot samme person", -1: "trekker mot ulike personer", 0: "nøytral"}


def evidence_lines(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The evidence that decided the score, in plain words, with the way each part pulled."""
    lines = []
    for key, level in evidence.items():
        label, levels = EVIDENCE.get(key, (key, {}))
        words, pull = levels.get(str(level), (str(level), 0))
        lines.append({"label": label, "words": words, "pull": pull, "way": DIRECTION[pull]})
    return lines


def _seconds(night: dict[str, Any]) -> float | None:
    start, end = night.get("started_at"), night.get("finished_at")
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return round((end - start).total_seconds(), 2)
    return None


def airflow_link(request: Request, night: dict[str, Any]) -> dict[str, str]:
    """The night's Airflow run, when the night recorded its run id (``airflow_run_id`` in its
    counts), else the DAG's list of runs (a night run by ``personkort night`` has no run)."""
    base = web(request).services.settings.airflow_url.rstrip("/")
    run = (night.get("counts") or {}).get("airflow_run_id")
    if isinstance(run, str) and run:
        return {"href": f"{base}/dags/{DAG_ID}/runs/{quote(run, safe='')}", "text": "Kjøringen"}
    return {"href": f"{base}/dags/{DAG_ID}/runs", "text": "Kjøringene i Airflow"}


FEED_STATUS = {
    "read": "Lest",
    "missing": "Ikke levert",
    "refused": "Avvist",
}
# The feed gate's reasons (personkort/gates.py: check_feed, nightly._write_feed) in the
# stewards' words; a reason not matched here is shown as the night wrote it.
FEED_REASONS = (
    (
        re.compile(r"^(\d+) of (\d+) lines of the snapshot could not be read$"),
        "{0} av {1} linjer i uttrekket kunne ikke leses (grensen er 10 %)",
    ),
    (
        re.compile(r"^(\d+) persons in the snapshot against (\d+) in the last one$"),
        "{0} personer i uttrekket, mot {1} i det forrige (mer enn 10 % færre)",
    ),
    (re.compile(r"^no folkeregister snapshot delivered$"), "ingen fil i folkeregister/"),
    (re.compile(r"^no snapshot read$"), "ingen fil ble lest"),
)


def feed_reason(reason: str) -> tuple[str, bool]:
    """(the reason in Norwegian, whether it was translated)."""
    for pattern, words in FEED_REASONS:
        found = pattern.match(reason)
        if found:
            return words.format(*found.groups()), True
    return reason, False


def feed_view(counts: dict[str, Any]) -> dict[str, Any] | None:
    """Tonight's Folkeregister snapshot as the stewards read it: read with its persons, missing,
    or refused with why. None for a night from before the feed (its counts have no ``feed``)."""
    feed = counts.get("feed")
    if not isinstance(feed, dict):
        return None
    status = str(feed.get("status", ""))
    reason, translated = feed_reason(str(feed.get("reason") or ""))
    return {
        **feed,
        "status_text": FEED_STATUS.get(status, status),
        "reason_text": reason,
        "reason_translated": translated,
    }


def night_view(request: Request, night: dict[str, Any]) -> dict[str, Any]:
    counts = night.get("counts") or {}
    report = night.get("report") or {}
    return {
        **night,
        "status_text": STATUS.get(night["status"], night["status"]),
        "seconds": _seconds(night),
        "c": counts,
        "gates": report.get("gates") or [],
        "findings": report.get("findings") or {},
        "airflow": airflow_link(request, night),
        "feed": feed_view(counts),
    }


def _refusal(request: Request, user: WebUser, exc: ServiceError, **ctx: Any) -> Response:
    """A service's refusal as a whole page (a non-steward opening the view, an unknown night;
    a pair decided by someone else first is a conflict, 409)."""
    status = status_of(exc)[0]
    return web(request).pages.render(
        request,
        "forvalter_avvist.html",
        status=status,
        user=user,
        active="forvalter",
        status_code=status,
        code=exc.code,
        message=STEWARD_MESSAGES.get(exc.code) or MESSAGES.get(exc.code, exc.message),
        trace_id=exc.trace_id,
        **ctx,
    )


@router.get("/forvalter", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    user = signed_in(request)
    w = web(request)
    try:
        nights = [night_view(request, n) for n in w.services.stewardship.nights(user.caseworker)]
        queue = w.services.stewardship.queue(user.caseworker)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return w.pages.render(
        request,
        "forvalter.html",
        user=user,
        active="forvalter",
        sub="netter",
        nights=nights,
        chart=list(reversed(nights)),
        open_pairs=sum(1 for p in queue if p.state != "decided"),
    )


@router.get("/forvalter/natt/{night_id}", response_class=HTMLResponse)
def night(
    request: Request,
    night_id: Id,
    fra: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    user = signed_in(request)
    w = web(request)
    service = w.services.stewardship
    try:
        shown = night_view(request, service.night(user.caseworker, night_id))
        rows = service.quarantine(user.caseworker, night_id, limit=QUARANTINE_PAGE + 1, offset=fra)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return w.pages.render(
        request,
        "forvalter_natt.html",
        user=user,
        active="forvalter",
        sub="natt",
        night=shown,
        quarantine=rows[:QUARANTINE_PAGE],
        offset=fra,
        next_offset=fra + QUARANTINE_PAGE if len(rows) > QUARANTINE_PAGE else None,
        page_size=QUARANTINE_PAGE,
    )


@router.get("/forvalter/vurderinger", response_class=HTMLResponse)
def queue(request: Request) -> Response:
    user = signed_in(request)
    w = web(request)
    service = w.services.stewardship
    try:
        pairs = service.queue(user.caseworker)
        rulings = service.rulings(user.caseworker)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return w.pages.render(
        request,
        "forvalter_vurderinger.html",
        user=user,
        active="forvalter",
        sub="vurderinger",
        pairs=pairs,
        rulings=rulings,
        outcome=OUTCOME,
    )


def _pair_page(
    request: Request,
    user: WebUser,
    pair: ReviewPair,
    status: int = 200,
    *,
    chosen: str = "",
    comment: str = "",
    errors: dict[str, str] | None = None,
    seen: str | None = None,
) -> Response:
    return web(request).pages.render(
        request,
        "forvalter_par.html",
        status=status,
        user=user,
        active="forvalter",
        sub="vurderinger",
        pair=pair,
        evidence=evidence_lines(pair.evidence),
        outcome=OUTCOME,
        chosen=chosen,
        comment=comment,
        errors=errors or {},
        seen=seen if seen is not None else pair.seen,
    )


@router.get("/forvalter/vurderinger/{review_id}", response_class=HTMLResponse)
def pair_page(request: Request, review_id: Id) -> Response:
    user = signed_in(request)
    try:
        pair = web(request).services.stewardship.pair(user.caseworker, review_id)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return _pair_page(request, user, pair)


def _choice(fields: dict[str, str]) -> tuple[str, str, str, dict[str, str]]:
    """The posted choice, comment and seen ruling, and what is missing, in plain words."""
    outcome = fields.get("utfall", "")
    comment = fields.get("kommentar", "").strip()
    seen = fields.get("sett", "")
    errors = {}
    if outcome not in OUTCOME:
        errors["utfall"] = "Velg om postene er samme person, ikke samme person, eller senere."
    if not comment:
        errors["kommentar"] = "Skriv en kommentar: hva avgjørelsen bygger på."
    elif len(comment) > 1000:
        errors["kommentar"] = "Kommentaren er for lang (høyst 1000 tegn)."
    return outcome, comment, seen, errors


@router.post("/forvalter/vurderinger/{review_id}/bekreft", response_class=HTMLResponse)
async def confirm(request: Request, review_id: Id) -> Response:
    """The confirmation step: says what is about to happen; nothing is stored here."""
    user = signed_in(request)
    fields = await checked_form(request, user)
    try:
        pair = web(request).services.stewardship.pair(user.caseworker, review_id)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    outcome, comment, seen, errors = _choice(fields)
    if errors:
        return _pair_page(
            request, user, pair, 422, chosen=outcome, comment=comment, errors=errors, seen=seen
        )
    return web(request).pages.render(
        request,
        "forvalter_bekreft.html",
        user=user,
        active="forvalter",
        sub="vurderinger",
        pair=pair,
        chosen=outcome,
        comment=comment,
        seen=seen,
        outcome=OUTCOME,
    )


@router.post("/forvalter/vurderinger/{review_id}/avgjor", response_class=HTMLResponse)
async def decide(request: Request, review_id: Id) -> Response:
    """The confirmed decision: stored with its audit event, or refused with the reason."""
    user = signed_in(request)
    fields = await checked_form(request, user)
    service = web(request).services.stewardship
    outcome, comment, seen, errors = _choice(fields)
    try:
        pair = service.pair(user.caseworker, review_id)
        if errors:
            return _pair_page(
                request, user, pair, 422, chosen=outcome, comment=comment, errors=errors
            )
        settled = service.decide_review(user.caseworker, review_id, outcome, comment, seen)
    except AlreadyDecided as exc:
        ruling = exc.ruling
        return _refusal(
            request,
            user,
            exc,
            title="Paret er allerede avgjort",
            ruling=ruling,
            ruling_text=OUTCOME["same" if ruling.same else "not_same"],
            own=ruling.steward == user.caseworker.sub,
            review_id=review_id,
        )
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return web(request).pages.render(
        request,
        "forvalter_kvittering.html",
        user=user,
        active="forvalter",
        sub="vurderinger",
        pair=pair,
        settled=settled,
        comment=comment,
        outcome=OUTCOME,
    )
