"""The browser session: a signed token in an HttpOnly, SameSite=Strict cookie, and CSRF checks.

The cookie holds the same kind of token the API takes as a bearer token, verified by the same
``TokenVerifier``; the API itself never reads the cookie (it takes ``Authorization`` only), so
the cookie path cannot weaken it. Every state-changing form carries a CSRF token bound to the
session (an HMAC of the session token under a key of its own), and must come from this origin
(``Sec-Fetch-Site`` / ``Origin``). The sign-in form, before there is a session, is a
double-submit: a random value in a cookie of its own and in the form.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from api.auth import TokenVerifier
from api.problems import ProblemError
from api.settings import Settings
from personkort.audit.scrub import find_idents
from personkort.policy.engine import Caseworker

log = logging.getLogger("personkort.web")
SESSION_COOKIE = "pk_sesjon"
SIGNIN_COOKIE = "pk_innlogging"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 8 * 3600  # a working day


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in caseworker, with what the pages show of them."""

    caseworker: Caseworker
    name: str
    csrf: str
    session_id: str = ""
    expires_at: dt.datetime | None = None

    def has(self, role: str) -> bool:
        return role in self.caseworker.roles


def session_audience(settings: Settings) -> str:
    """The pages' sessions have an audience of their own: a copied session cookie is no API
    token (the API takes only ``jwt_audience``), and an API token is no session."""
    return f"{settings.jwt_audience}-sider"


class Sessions:
    def __init__(
        self, settings: Settings, tokens: TokenVerifier, ended: Callable[[str], bool]
    ) -> None:
        self.settings = settings
        self.tokens = tokens
        self.ended = ended  # has this session id been signed out (in any process)?
        # The CSRF key is derived from the session secret (else the token secret), in its own
        # domain, so it is the same in every worker and never equals the secret itself. With
        # neither (JWKS tokens and no session secret) it is random per process: forms still
        # work with one worker, and fail closed (403) across several.
        secret = settings.session_secret or tokens.secret
        if secret is None:
            log.warning("PERSONKORT_SESSION_SECRET is not set: CSRF tokens are per process")
        seed = secret.encode() if secret else secrets.token_bytes(32)
        self._csrf_key = hmac.new(seed, b"personkort-web-csrf-v1", hashlib.sha256).digest()

    # -- the session -----------------------------------------------------------------------

    def user(self, request: Request) -> WebUser | None:
        """The signed-in caseworker, or None (no cookie, or a token that fails any check)."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            claims = self.tokens.verify(token, session_audience(self.settings))
        except ProblemError:
            return None
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 64 or self.ended(jti):
            return None  # every session the sign-in makes has an id; a signed-out one ended
        name = claims.get("name")
        worker = Caseworker(
            sub=claims["sub"],
            employer=claims["employer"],
            office=claims["office"],
            roles=frozenset(claims["roles"]),
            pid=claims.get("pid"),
        )
        # The name is shown on every page: never one holding an identity number (an IdP's
        # slip, or a display name set to the person's own number).
        shown = name if isinstance(name, str) and _showable(name) else None
        expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
        return WebUser(worker, shown or worker.sub, self._csrf_for(token), jti, expires)

    def open(self, response: Response, token: str, request: Request) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
            path="/",
        )
        response.delete_cookie(SIGNIN_COOKIE, path="/")

    def _secure(self, request: Request) -> bool:
        """HTTPS-only outside development mode, whatever scheme uvicorn saw: behind a proxy
        that ends TLS (not on 127.0.0.1, so no forwarded headers are trusted) the request looks
        like plain HTTP, and the session must still never travel in clear."""
        return _https(request) or not self.settings.dev_mode

    def close(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    # -- CSRF ------------------------------------------------------------------------------

    def _csrf_for(self, token: str) -> str:
        mac = hmac.new(self._csrf_key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def check_form(self, request: Request, user: WebUser, submitted: str | None) -> None:
        """A state-changing request: from this origin, with this session's CSRF token."""
        same_origin(request)
        sent = request.headers.get(CSRF_HEADER) or submitted or ""
        if not hmac.compare_digest(sent.encode(), user.csrf.encode()):
            raise csrf_refused()

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def remember_nonce(response: Response, nonce: str, request: Request) -> None:
        """The sign-in form's double-submit value, in a cookie of its own for ten minutes."""
        response.set_cookie(
            SIGNIN_COOKIE,
            nonce,
            max_age=600,
            httponly=True,
            samesite="strict",
            secure=_https(request),
            path="/",
        )

    @staticmethod
    def check_signin(request: Request, submitted: str | None) -> None:
        same_origin(request)
        expected = request.cookies.get(SIGNIN_COOKIE) or ""
        if not expected or not hmac.compare_digest((submitted or "").encode(), expected.encode()):
            raise csrf_refused()


def same_origin(request: Request) -> None:
    """Refuse a request another site made the browser send (fail closed on a foreign origin)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise csrf_refused()
    origin = request.headers.get("origin")
    if origin == "null" and site == "same-origin":
        return  # the browser hides the origin under Referrer-Policy: no-referrer
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise csrf_refused()


def csrf_refused() -> ProblemError:
    return ProblemError(
        403,
        "csrf_avvist",
        "Forbidden",
        "Skjemaet kom ikke fra denne økten. Last siden på nytt og prøv igjen.",
    )


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _showable(name: str) -> bool:
    return 0 < len(name) <= 80 and name.isprintable() and not find_idents(name)
