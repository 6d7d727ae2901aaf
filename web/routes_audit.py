"""The auditors' view: search the log by person (the number posted in a body) or by caseworker
and period, denials and kode 6 / skjermet openings, policy versions side by side, the chain
check, CSV and CEF downloads, and one person's printable access report (GDPR art. 15).

The routes only parse the form, call ``AuditQueryService`` (which checks the role and writes an
``audit_search`` event for every search, verify and report) and render. No identity number
travels in a URL: every search, download and report is a POST.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.problems import status_of
from personkort.ident import normalise
from personkort.services import ServiceError
from personkort.services.audit_queries import EventFilter
from personkort.services.errors import Invalid
from web.context import checked_form, signed_in, web
from web.messages import MESSAGES
from web.rendering import stamp
from web.session import WebUser

router = APIRouter(include_in_schema=False)
ON_PAGE = 200  # rows a search shows; the downloads take up to DOWNLOAD
DOWNLOAD = 10_000
ELEVEN_DIGITS = re.compile(r"[0-9]{11}")

KINDS = {
    "lookup": "Oppslag",
    "consent_registered": "Samtykke registrert",
    "consent_withdrawn": "Samtykke trukket",
    "consent_search": "Samtykkeoversikt",
    "consent_refused": "Samtykke avvist",
    "policy_activated": "Policyversjon tatt i bruk",
    "steward_decision": "Identitetsavgjørelse",
    "audit_search": "Revisjonssøk",
    "rate_limited": "For mange oppslag",
    "source_accepted": "Kilde mottatt",
}
OUTCOMES = {
    "permit": "Vist",
    "partial": "Delvis vist",
    "deny": "Nektet",
    "not_found": "Ikke funnet",
    "moved": "Kortet er flyttet",
}
OUTCOME_COLOURS = {
    "permit": "success",
    "partial": "info",
    "deny": "danger",
    "not_found": "neutral",
    "moved": "neutral",
}
REASONS = {
    "strengt_fortrolig_adresse": "strengt fortrolig adresse (kode 6)",
    "skjermet_person": "skjermet person (ansatt i NAV)",
    "egne_data": "eget personkort",
    "egen_familie": "egen familie (forelder, barn eller søsken)",
    "egen_partner": "egen ektefelle, partner eller den man har barn med",
    "mangler_rolle": "mangler rollen som trengs",
    "formal_mangler": "formål mangler",
    "ukjent_kontor": "kontoret er ikke i tilgangsreglene",
    "ukjent_person": "ingen person med nummeret",
    "for_mange_oppslag": "for mange oppslag på kort tid",
    "kort_flyttet": "kortet er slått sammen med et annet",
    "ikke_verifisert_ident": "nummeret er ikke bekreftet av Arena, Infotrygd eller Folkeregisteret",
}
CLASSES = {
    "identity": "identitet",
    "contact": "kontaktopplysninger",
    "follow_up": "oppfølging",
    "state_benefit_summary": "statlige ytelser",
    "state_benefit_amounts": "beløp i statlige ytelser",
    "health": "helseopplysninger",
    "municipal_service": "kommunale tjenester",
    "municipal_free_text": "kommunal fritekst",
    "substance_abuse": "rusopplysninger",
}
WITHHELD_REASONS = {
    "ingen_tilgang": "ingen tilgang",
    "fortrolig_adresse": "fortrolig adresse",
    "statlig_taushetsplikt": "statlig taushetsplikt",
    "helseopplysninger": "helseopplysninger",
    "kommunal_taushetsplikt": "kommunal taushetsplikt",
    "kommunal_fritekst": "kommunal fritekst",
    "rusopplysninger": "rusopplysninger",
    "ingen_regel": "ingen regel gir tilgang",
}
SCOPES = {"okonomi": "økonomi", "helse": "helse", "sosial": "sosiale tjenester"}
KIND_CHOICES = ("lookup", "consent_registered", "consent_withdrawn", "consent_search")
KIND_CHOICES += ("consent_refused", "audit_search", "policy_activated", "steward_decision")


def employer_words(employer: str | None) -> str:
    """``stat`` and ``kommune:0301`` as people read them."""
    if not employer:
        return ""
    if employer == "stat":
        return "statlig (NAV)"
    if employer.startswith("kommune:"):
        return f"kommunal (kommune {employer.split(':', 1)[1]})"
    return employer


def first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def office_words(office: str | None) -> str:
    """``nav-lillestrom`` as ``NAV Lillestrom`` (the policy names offices by id only)."""
    if not office:
        return ""
    if office.startswith("nav-"):
        return "NAV " + " ".join(p.capitalize() for p in office[4:].split("-"))
    return office


def reasons_words(codes: list[str] | tuple[str, ...]) -> str:
    return ", ".join(REASONS.get(c, c.replace("_", " ")) for c in codes)


def withheld_words(withheld: list[Any] | tuple[Any, ...]) -> list[str]:
    """Withheld field classes, each once, with their reason: ``helseopplysninger (…)``."""
    seen: dict[str, str] = {}
    for w in withheld:
        rule = w["rule"] if isinstance(w, dict) else w.rule
        reason = w["reason"] if isinstance(w, dict) else w.reason
        seen.setdefault(rule, reason)
    return [
        f"{CLASSES.get(rule, rule)} ({WITHHELD_REASONS.get(reason, reason)})"
        for rule, reason in seen.items()
    ]


def privileged_words(used: list[str] | tuple[str, ...]) -> str:
    names = {"strengt_fortrolig_adresse": "kode 6", "skjermet_person": "skjermet"}
    return ", ".join(names.get(u, u) for u in used)


def row_of(event: dict[str, Any]) -> dict[str, Any]:
    """One event as the results table shows it."""
    data = event.get("data", {})
    who = data.get("caseworker") or {}
    return {
        "seq": event["seq"],
        "at": event["at"],
        "kind": KINDS.get(event["kind"], event["kind"]),
        "sub": who.get("sub", ""),
        "office": who.get("office", ""),
        "employer": employer_words(who.get("employer")),
        "outcome": data.get("decision"),
        # A partial answer's codes are its withheld fields' reasons: shown with those fields.
        "reasons": ""
        if data.get("decision") == "partial"
        else reasons_words(data.get("reason_codes") or []),
        "withheld": withheld_words(data.get("withheld") or []),
        "policy": (data.get("policy_version") or "")[:12],
        "purpose": data.get("purpose") or "",
        "privileged": privileged_words(data.get("privileged_use") or []),
        "trace_id": data.get("trace_id") or event.get("trace_id") or "",
        "outcome_words": OUTCOMES.get(data.get("decision") or "", data.get("decision") or ""),
        "search": search_words(data) if event["kind"] == "audit_search" else "",
    }


def search_words(data: dict[str, Any]) -> str:
    """What an auditor's search asked for, in words (the number itself is never stored)."""
    filters = data.get("filters") or {}
    if filters.get("access_report"):
        return "Innsynsrapport for en person"
    if filters.get("verify"):
        return "Kontroll av loggen"
    if "proof_of" in filters:
        return f"Bevis for hendelse nr. {filters['proof_of']}"
    parts = ["søk etter en person" if data.get("by_person") else "søk"]
    names = {
        "caseworker": "saksbehandler",
        "kind": "hendelse",
        "decision": "utfall",
        "privileged": "kode 6 / skjermet",
        "since": "fra",
        "until": "til",
        "card_id": "kort",
    }
    parts += [f"{names[k]}: {filters[k]}" for k in names if k in filters]
    return ", ".join(parts)


def _utc_of(day: str, what: str, *, end: bool = False) -> str | None:
    """A date typed in the form (Oslo) as the log's UTC stamp: from its start, or to its end."""
    if not day:
        return None
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise Invalid("ugyldig_dato", f"{what} er ikke en gyldig dato (åååå-mm-dd).") from None
    if not 1900 <= date.year <= 2999:  # the log's years; UTC cannot hold the calendar's edges
        raise Invalid("ugyldig_dato", f"{what} er utenfor det loggen kan søke i (1900-2999).")
    if end:
        date += dt.timedelta(days=1)
    local = dt.datetime.combine(date, dt.time(), tzinfo=ZoneInfo("Europe/Oslo"))
    return local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def search_of(form: dict[str, str], limit: int) -> tuple[EventFilter, dict[str, str]]:
    """The form's filters as the service takes them, and the form's fields as they were
    typed (to fill the form again and to carry the search into a download)."""
    typed = {
        k: (form.get(k) or "").strip()
        for k in ("ident", "saksbehandler", "fra", "til", "type", "avslag", "privilegert")
    }
    ident = normalise(typed["ident"]) if typed["ident"] else None
    if ident is not None and not ELEVEN_DIGITS.fullmatch(ident):
        raise Invalid("ugyldig_ident", "An identity number is 11 digits.")
    since = _utc_of(typed["fra"], "Fra-datoen")
    until = _utc_of(typed["til"], "Til-datoen", end=True)
    if since and until and since >= until:
        raise Invalid("ugyldig_dato", "Til-datoen kan ikke være før fra-datoen.")
    kind = typed["type"] if typed["type"] in KINDS else None
    return (
        EventFilter(
            ident=ident,
            caseworker=typed["saksbehandler"][:64] or None,
            kind=kind,
            decision="deny" if typed["avslag"] else None,
            privileged=True if typed["privilegert"] else None,
            since=since,
            until=until,
            limit=limit,
        ),
        typed,
    )


def problem_of(exc: ServiceError) -> dict[str, Any]:
    """What ``_problem.html`` shows of a refusal: plain words and the trace id."""
    return {
        "status_code": status_of(exc)[0],
        "code": exc.code,
        "message": MESSAGES.get(exc.code, exc.message),
        "trace_id": exc.trace_id,
    }


def _refusal(request: Request, user: WebUser, exc: ServiceError) -> Response:
    """A page the user may not open, or a request it refused: a whole page in plain words."""
    problem = problem_of(exc)
    return web(request).pages.render(
        request,
        "audit_refused.html",
        status=problem["status_code"],
        user=user,
        active="revisor",
        problem=problem,
    )


def _fragment_or_page(
    request: Request, user: WebUser, fragment: str, exc: ServiceError | None = None, **ctx: Any
) -> Response:
    """htmx swaps the fragment into the page; a browser without script gets the whole page."""
    pages = web(request).pages
    htmx = bool(request.headers.get("hx-request"))
    if exc is not None:
        if htmx:
            return pages.error(request, exc)
        return _refusal(request, user, exc)
    if htmx:
        return pages.render(request, fragment, user=user, **ctx)
    return pages.render(request, "audit.html", user=user, active="revisor", include=fragment, **ctx)


@router.get("/revisor", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = signed_in(request)
    try:
        web(request).services.auditing.policies(user.caseworker)  # the service checks the role
    except ServiceError as exc:
        return _refusal(request, user, exc)
    return web(request).pages.render(
        request, "audit.html", user=user, active="revisor", typed={}, kinds=_kind_choices()
    )


def _kind_choices() -> list[tuple[str, str]]:
    return [(k, KINDS[k]) for k in KIND_CHOICES]


@router.post("/revisor/sok", response_class=HTMLResponse)
async def search(request: Request) -> Response:
    user = signed_in(request)
    form = await checked_form(request, user)
    auditing = web(request).services.auditing
    try:
        wanted, typed = search_of(form, ON_PAGE + 1)
        found = auditing.events(user.caseworker, wanted)
    except ServiceError as exc:
        return _fragment_or_page(request, user, "", exc)
    return _fragment_or_page(
        request,
        user,
        "audit_results.html",
        rows=[row_of(e) for e in found[:ON_PAGE]],
        more=len(found) > ON_PAGE,
        typed=typed,
        kinds=_kind_choices(),
        on_page=ON_PAGE,
        download=DOWNLOAD,
    )


@router.post("/revisor/last-ned")
async def download(request: Request) -> Response:
    """The current search as a file (CSV or CEF): the criteria came in the body."""
    user = signed_in(request)
    form = await checked_form(request, user)
    auditing = web(request).services.auditing
    fmt = "cef" if form.get("format") == "cef" else "csv"
    try:
        wanted, _typed = search_of(form, DOWNLOAD)
        found = auditing.events(user.caseworker, wanted)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    made = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "cef":
        body, media = auditing.cef(found), "text/plain; charset=utf-8"
    else:
        body, media = "\ufeff" + auditing.csv(found), "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="revisjonslogg-{made}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/revisor/verifiser", response_class=HTMLResponse)
async def verify(request: Request) -> Response:
    user = signed_in(request)
    await checked_form(request, user)
    try:
        result = web(request).services.auditing.verify(user.caseworker)
    except ServiceError as exc:
        return _fragment_or_page(request, user, "", exc)
    checked_at = stamp(dt.datetime.now(dt.UTC))
    return _fragment_or_page(
        request,
        user,
        "audit_verify.html",
        result=result,
        checked_at=checked_at,
        typed={},
        kinds=_kind_choices(),
    )


@router.get("/revisor/policy", response_class=HTMLResponse)
def policy_versions(request: Request, fra: str | None = None, til: str | None = None) -> Response:
    """Policy versions, and the difference between two (version ids are no personal data)."""
    user = signed_in(request)
    auditing = web(request).services.auditing
    diff: list[dict[str, str]] | None = None
    problem = None
    try:
        versions = auditing.policies(user.caseworker)
    except ServiceError as exc:
        return _refusal(request, user, exc)
    if fra and til:
        try:
            diff = diff_rows(auditing.policy_diff(user.caseworker, fra, til))
        except ServiceError as exc:
            problem = problem_of(exc)
    return web(request).pages.render(
        request,
        "audit_policy.html",
        user=user,
        active="revisor",
        versions=versions,
        fra=fra,
        til=til,
        older=versions[-2]["version"] if len(versions) > 1 else None,
        newer=versions[-1]["version"] if versions else None,
        diff=diff,
        problem=problem,
    )


def diff_rows(unified: str) -> list[dict[str, str]]:
    """A unified diff as rows marked in words and signs, not colour alone."""
    rows: list[dict[str, str]] = []
    for line in unified.splitlines():
        if line.startswith("---"):
            rows.append({"kind": "fil", "sign": "", "label": "Fil, eldre", "text": line[4:]})
        elif line.startswith("+++"):
            rows.append({"kind": "fil", "sign": "", "label": "Fil, nyere", "text": line[4:]})
        elif line.startswith("@@"):
            rows.append({"kind": "bit", "sign": "", "label": "Linjer", "text": line})
        elif line.startswith("+"):
            rows.append({"kind": "ny", "sign": "+", "label": "Lagt til", "text": line[1:]})
        elif line.startswith("-"):
            rows.append({"kind": "gammel", "sign": "−", "label": "Fjernet", "text": line[1:]})
        else:
            rows.append({"kind": "lik", "sign": "", "label": "Uendret", "text": line[1:]})
    return rows


@router.get("/revisor/innsyn", response_class=HTMLResponse)
def report_form(request: Request) -> Response:
    user = signed_in(request)
    if not user.has("revisor"):
        try:
            web(request).services.auditing.policies(user.caseworker)
        except ServiceError as exc:
            return _refusal(request, user, exc)
    return web(request).pages.render(
        request, "audit_report_form.html", user=user, active="revisor", problem=None
    )


@router.post("/revisor/innsyn", response_class=HTMLResponse)
async def report(request: Request) -> Response:
    """The printable access report for one person (a whole page, for the printer)."""
    user = signed_in(request)
    form = await checked_form(request, user)
    pages = web(request).pages
    ident = (form.get("ident") or "").strip()
    try:
        made = web(request).services.auditing.access_report(user.caseworker, ident)
    except ServiceError as exc:
        if not user.has("revisor"):
            return _refusal(request, user, exc)
        problem = problem_of(exc)
        return pages.render(
            request,
            "audit_report_form.html",
            status=problem["status_code"],
            user=user,
            active="revisor",
            problem=problem,
        )
    rows = [
        {
            "row": r,
            "kind": KINDS.get(r.kind, r.kind),
            "office": office_words(r.office),
            "employer": first_up(employer_words(r.employer)),
            "role": "veileder" if "veileder" in r.roles else ", ".join(r.roles),
            "outcome": OUTCOMES.get(r.outcome or "", r.outcome or ""),
            "shown": shown_words(r.outcome, bool(r.withheld)),
            "withheld": withheld_words(r.withheld),
            "reasons": "" if r.outcome == "partial" else reasons_words(r.reason_codes),
            "privileged": privileged_words(r.privileged_use),
            "consents": ", ".join(SCOPES.get(s, s) for s in r.consents_in_force),
        }
        for r in made.rows
    ]
    consents = [
        {
            "change": c,
            "kind": KINDS.get(c.kind, c.kind),
            "scope": SCOPES.get(c.scope or "", c.scope or ""),
            "office": office_words(c.office),
        }
        for c in made.consents
    ]
    offices = sorted({r["office"] for r in rows if r["office"]})
    return pages.render(
        request,
        "audit_report.html",
        user=user,
        active="revisor",
        report=made,
        rows=rows,
        consents=consents,
        offices=offices,
        ident=normalise(ident),
    )


def shown_words(outcome: str | None, withheld: bool) -> str:
    """What the caseworker saw of the card, in the person's words."""
    if outcome == "permit":
        return "Kortet ble vist; ingenting ble holdt tilbake."
    if outcome == "partial":
        return "Kortet ble vist, men noe ble holdt tilbake:" if withheld else "Kortet ble vist."
    if outcome == "not_found":
        return "Ingenting ble vist."
    if outcome == "deny":
        return "Ingenting ble vist: oppslaget ble nektet."
    return "Ingenting ble vist."
