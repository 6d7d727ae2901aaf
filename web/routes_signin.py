"""Development sign-in: pick a demo caseworker; a real signed token goes into the cookie.

Outside development mode there is no picker: sign-in belongs to the office's identity provider
(docs/web.md says how one plugs in), and this page says so.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import mint
from web.context import checked_form, signed_in, web
from web.demo import BY_SUB, DEMO_USERS
from web.session import SESSION_SECONDS, Sessions, session_audience

router = APIRouter(include_in_schema=False)


def home_of(roles: frozenset[str] | tuple[str, ...]) -> str:
    """Where a user starts: caseworkers at the card, stewards and auditors at their views."""
    if "veileder" in roles:
        return "/"
    if "forvalter" in roles:
        return "/forvalter"
    if "revisor" in roles:
        return "/revisor"
    return "/"


@router.get("/logg-inn", response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    return _signin_form(request, 200)


def _signin_form(request: Request, status: int, error: str | None = None) -> Response:
    w = web(request)
    dev = w.services.settings.dev_mode
    nonce = Sessions.new_nonce()
    response = w.pages.render(
        request,
        "signin.html",
        status=status,
        users=DEMO_USERS if dev else (),
        dev_mode=dev,
        user=None,
        nonce=nonce,
        error=error,
    )
    Sessions.remember_nonce(response, nonce, request)
    return response


@router.post("/logg-inn")
async def signin(request: Request) -> Response:
    w = web(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    Sessions.check_signin(request, fields.get("nonce"))
    user = BY_SUB.get(fields.get("bruker", ""))
    if not w.services.settings.dev_mode or user is None:
        return _signin_form(request, 400, "Velg en av brukerne i listen.")
    token = mint(
        w.services.settings,
        {**user.claims, "jti": secrets.token_urlsafe(24)},
        lifetime_seconds=SESSION_SECONDS,
        audience=session_audience(w.services.settings),
    )
    response = RedirectResponse(home_of(user.roles), status_code=303)
    w.sessions.open(response, token, request)
    return response


@router.post("/logg-ut")
async def signout(request: Request) -> Response:
    user = signed_in(request)
    await checked_form(request, user)
    if user.expires_at is not None:  # ended everywhere, not only forgotten by this browser
        web(request).services.sessions.end(user.caseworker, user.session_id, user.expires_at)
    response = RedirectResponse("/logg-inn", status_code=303)
    web(request).sessions.close(response)
    return response
