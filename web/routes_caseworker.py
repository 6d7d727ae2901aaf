"""The caseworkers' page at ``/``: one field, Enter, and the card.

The number travels in a POST body only (never a URL, so never the browser history), the card
comes back as an HTML fragment that htmx swaps in. Each route parses the form, calls one
application service and renders: the gate, the audit event and the view are the services'.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from personkort.card import VERIFYING_REGISTERS
from personkort.consents import months_later
from personkort.ident import IdentError, parse
from personkort.policy.engine import Caseworker
from personkort.services import ServiceError
from personkort.services.errors import Invalid
from personkort.services.lookup import CardPage
from web.context import checked_form, signed_in, web
from web.messages import MESSAGES
from web.rendering import norwegian_date
from web.routes_signin import home_of
from web.session import WebUser

router = APIRouter(include_in_schema=False)
PURPOSE_MISSING = "formal_mangler"
PURPOSE_REFUSED = ("formal_for_langt", "formal_med_nummer")
TITLES = {
    "Denied": "Oppslaget er avvist",
    "NotFound": "Fant ikke personen",
    "Invalid": "Kan ikke slå opp",
    "RateLimited": "Vent litt",
    "Unavailable": "Ikke tilgjengelig nå",
}


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user = signed_in(request)
    if not user.has("veileder"):
        return RedirectResponse(home_of(user.caseworker.roles), status_code=303)
    return web(request).pages.render(
        request, "caseworker.html", user=user, active="oppslag", title="Oppslag"
    )


@router.post("/oppslag", response_class=HTMLResponse)
async def lookup(request: Request) -> Response:
    """A card by identity number (and a purpose, when the gate asks for one)."""
    user = signed_in(request)
    form = await checked_form(request, user)
    return _card(request, user, form.get("ident", ""), form.get("formal") or None)


@router.post("/samtykke", response_class=HTMLResponse)
async def register_consent(request: Request) -> Response:
    """Register a consent from the card; the card is then looked up again (a new, audited
    lookup) so the fields the consent opens are shown at once."""
    user = signed_in(request)
    form = await checked_form(request, user)
    w, purpose = web(request), form.get("formal") or None
    try:
        view = w.services.consents.register(
            user.caseworker,
            ident=form.get("samtykke_ident", ""),
            scope=form.get("omfang", ""),
            valid_from=_date(form.get("fra", "")),
            valid_to=_date(form.get("til", "")),
            form_reference=form.get("skjema", ""),
            purpose=purpose,
            on_card=form.get("ident", ""),
        )
    except ServiceError as exc:
        return w.pages.error(request, exc, title="Samtykket ble ikke registrert")
    notice = (
        f"Samtykke til {SCOPE_WORDS.get(view.record.scope, view.record.scope)} er registrert "
        f"(skjema {view.record.form_reference})."
    )
    return _retargeted(_card(request, user, form.get("ident", ""), purpose, notice=notice))


@router.post("/samtykke/trekk", response_class=HTMLResponse)
async def withdraw_consent(request: Request) -> Response:
    user = signed_in(request)
    form = await checked_form(request, user)
    w, purpose = web(request), form.get("formal") or None
    raw = form.get("samtykke_id", "")
    # ASCII digits within the column only: int() also reads other scripts' digits and any size.
    consent_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else 0
    if not 1 <= consent_id <= 2**31 - 1:
        return w.pages.error(
            request, Invalid("ukjent_samtykke", "No such consent."), title="Ikke trukket"
        )
    try:
        w.services.consents.withdraw(user.caseworker, consent_id, purpose)
    except ServiceError as exc:
        return w.pages.error(request, exc, title="Samtykket ble ikke trukket")
    notice = "Samtykket er trukket tilbake. Feltene det åpnet er skjult igjen."
    return _retargeted(_card(request, user, form.get("ident", ""), purpose, notice=notice))


SCOPE_WORDS = {"okonomi": "økonomi", "helse": "helse", "sosial": "sosiale tjenester"}


def _card(
    request: Request,
    user: WebUser,
    ident: str,
    purpose: str | None,
    notice: str | None = None,
) -> Response:
    w = web(request)
    try:
        page: CardPage = w.services.lookup.for_page(user.caseworker, ident, purpose)
    except ServiceError as exc:
        if exc.code == PURPOSE_MISSING or (purpose and exc.code in PURPOSE_REFUSED):
            # Asked again, with what was wrong with the purpose given, if one was.
            return w.pages.render(
                request,
                "card/_purpose.html",
                status=403 if exc.code == PURPOSE_MISSING else 422,
                user=user,
                message=exc.message if exc.code == PURPOSE_MISSING else "",
                problem=(
                    None
                    if not purpose
                    else MESSAGES.get(exc.code)
                    if exc.code in PURPOSE_REFUSED
                    else "Formålet må ha minst tre bokstaver eller sifre."
                ),
                trace_id=exc.trace_id,
            )
        return w.pages.error(request, exc, title=TITLES.get(type(exc).__name__))
    today = dt.date.today()
    context: dict[str, Any] = card_context(page, user.caseworker)
    return w.pages.render(
        request,
        "card/_card.html",
        user=user,
        ident=ident,
        purpose=purpose or "",
        notice=notice,
        today=today,
        consent_until=months_later(today, 12) - dt.timedelta(days=1),
        **context,
    )


def _retargeted(response: Response) -> Response:
    """A consent form answers into its own message box on a refusal; a new card replaces
    the whole answer instead."""
    if response.status_code < 400:
        response.headers["HX-Retarget"] = "#svar"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def _date(text: str) -> dt.date:
    """``2026-12-01`` or ``1.12.2026``, as a caseworker types it."""
    text = text.strip()
    try:
        if "." in text:
            day, month, year = (int(p) for p in text.split("."))
            return dt.date(year, month, day)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Invalid("ugyldig_dato", "A date is dd.mm.åååå.") from None


# -- what the card template needs beside the view -------------------------------------------

REGISTERS = {
    "arena": "Arena",
    "infotrygd": "Infotrygd",
    "kommune": "kommunens fagsystem",
    "folkeregister": "Folkeregisteret",
}
# How tonight's delivery of a source is told on the card (freshness.py's ``tonight``).
TONIGHT_WORDS = {
    "read": "lest i natt",
    "missing": "ikke levert i natt",
    "refused": "avvist i natt",
    "events_unreadable": "dagens hendelser kunne ikke leses",
}
WITHHELD_WORDS = {
    "statlig_taushetsplikt": "opplysningen er underlagt statlig taushetsplikt",
    "helseopplysninger": "helseopplysning: bare statlige veiledere ser den uten samtykke",
    "kommunal_taushetsplikt": "kommunal taushetsplikt (sosiale tjenester)",
    "kommunal_fritekst": "saksbehandlerens fritekst: bare kommunen som eier saken ser den",
    "rusopplysninger": "rusopplysninger: bare kommunen som eier saken ser dem",
    "fortrolig_adresse": "personen har fortrolig adresse (kode 7)",
    "ingen_tilgang": "du har ikke tilgang til denne opplysningen",
    "ingen_regel": "ingen regel gir tilgang til denne opplysningen",
}
PROTECTION_WORDS = {
    "STRENGT_FORTROLIG": "Strengt fortrolig adresse (kode 6)",
    "STRENGT_FORTROLIG_UTLAND": "Strengt fortrolig adresse (kode 6, utland)",
    "FORTROLIG": "Fortrolig adresse (kode 7)",
}
CONFLICT_WORDS = {
    "birth_date": "fødselsdato",
    "death_date": "dødsdato",
    "address": "adresse",
    "postnr": "postnummer",
    "kommunenr": "kommunenummer",
}
FOLLOW_UP_WORDS = {
    "nav_office": "NAV-kontor",
    "veileder": "Veileder",
    "formidlingsgruppe": "Formidlingsgruppe",
    "kvalifiseringsgruppe": "Kvalifiseringsgruppe",
}
# Which of the page's sections a quarantined record's section leaves without its source.
GAP_SECTIONS = {
    "identity": ("identity", "contact", "follow_up"),
    "follow_up": ("follow_up",),
    "measures": ("measures",),
    "state_benefits": ("state_benefits",),
    "municipal_services": ("municipal_services",),
}


def withheld_text(value: dict[str, Any]) -> tuple[str, str]:
    """(why, what would open it) in plain words, for a withheld marker."""
    why = WITHHELD_WORDS.get(value.get("reason", ""), "du har ikke tilgang")
    scope = value.get("consent")
    opens = (
        f"Samtykke til {SCOPE_WORDS.get(scope, scope)} åpner feltet."
        if scope
        else "Ingen samtykke åpner feltet."
    )
    return why, opens


def source_line(state: dict[str, Any]) -> dict[str, Any]:
    """One of the card's sources in words, with a warning when what it shows may be old: the
    caseworker must be told in text, not by a colour, that a protection marker, a number or a
    death may be missing."""
    name = REGISTERS.get(state["register"], state["register"])
    tonight = state.get("tonight") or "read"
    since = norwegian_date(state.get("data_from")) or "en ukjent dato"
    warning = None
    if tonight == "events_unreadable":
        warning = (
            f"Dagens hendelser fra {name} kunne ikke leses: endringer fra i dag, som ny "
            "adressebeskyttelse eller et dødsfall, kan mangle."
        )
    elif state.get("may_be_old"):
        what = "ble avvist i natt" if tonight == "refused" else "ble ikke levert i natt"
        warning = f"{name} {what}: opplysningene kan være gamle (de er fra {since})."
    return {
        "register": state["register"],
        "name": name,
        "tonight": tonight,
        "data_from": state.get("data_from"),
        "text": f"{name}: data fra {since}, {TONIGHT_WORDS.get(tonight, tonight)}.",
        "may_be_old": bool(state.get("may_be_old")),
        "warning": warning,
    }


def card_context(page: CardPage, worker: Caseworker) -> dict[str, Any]:
    """Header facts, labels and the sections' unavailable sources, from the view."""
    view = page.view
    identity = view["identity"]
    births = [v["value"] for v in identity["birth_date"]]
    deaths = [v["value"] for v in identity["death_date"]]
    idents = [v["value"] for v in identity["idents"]]
    birth, birth_from_number = (births[0] if births else None), False
    if birth is None:
        for number in idents:
            parsed = parse_or_none(number)
            if parsed is not None:
                birth, birth_from_number = parsed.isoformat(), True
                break
    labels: list[tuple[str, str]] = []
    if page.protection:
        labels.append(("danger", PROTECTION_WORDS.get(page.protection, page.protection)))
    if page.skjermet:
        labels.append(("warning", "Skjermet (ansatt i NAV)"))
    if view["pending_review"]:
        labels.append(("info", "Til vurdering: kortet kan være to personer eller mangle en post"))
    in_force = sorted({c["scope"] for c in view["consents"] if c["in_force"]})
    for scope in in_force:
        labels.append(("success", f"Samtykke registrert: {SCOPE_WORDS.get(scope, scope)}"))
    unavailable: dict[str, list[str]] = {}
    for gap in page.gaps:
        for section in GAP_SECTIONS.get(gap.section, (gap.section,)):
            names = unavailable.setdefault(section, [])
            name = REGISTERS.get(gap.register, gap.register)
            if name not in names:
                names.append(name)
    verified = [
        v["value"]
        for v in (*identity["idents"], *identity["earlier_idents"])
        if v["source"]["register"] in VERIFYING_REGISTERS
    ]
    return {
        "card": view,
        "person_name": identity["names"][0]["value"] if identity["names"] else None,
        "birth": birth,
        "birth_from_number": birth_from_number,
        "death": deaths[0] if deaths else None,
        "labels": labels,
        "unavailable": unavailable,
        "verified_idents": list(dict.fromkeys(verified)),
        "sources": [source_line(s) for s in view.get("sources") or []],
        "registers": REGISTERS,
        "conflict_words": CONFLICT_WORDS,
        "follow_up_words": FOLLOW_UP_WORDS,
        "scope_words": SCOPE_WORDS,
        "withheld_text": withheld_text,
        "municipal_worker": worker.municipality is not None,
    }


def parse_or_none(number: str) -> dt.date | None:
    try:
        return parse(number).birth_date
    except IdentError:
        return None
