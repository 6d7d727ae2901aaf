"""The request guard: what every request passes before any route sees it, and what every
response carries. Pure ASGI (not BaseHTTPMiddleware), in this order:

1. headers (and the request target) over ``max_header_bytes`` in total: 431, before anything
   is parsed;
2. under ``/api/`` (except health, the OpenAPI document and the docs) the bearer token is
   verified before a byte of the body is read: 401 without reading it, so an unauthenticated
   client cannot make the server buffer or parse anything. The caseworker is kept in
   ``scope["state"]["caseworker"]`` for the routes;
3. the body is read while counting: over ``max_body_bytes`` (declared or not, whatever
   Content-Length says) is 413, and reading stops there;
4. a body that is not JSON by its Content-Type is 415 (outside ``/api/`` a url-encoded form
   is accepted too, for the pages), malformed JSON is 400;
5. every response, problems and 404s included, gets ``Cache-Control: no-store`` and the security
   headers; an unhandled error is a 500 problem, logged by type and place only (an exception's
   message may hold an identity number).

Every error is problem+json: the handler for Starlette's HTTPException gives 404/405/... a
stable ``code``. ``check_keys``, which the app factory calls first, refuses to start without
configured keys outside development mode, and warns at every start in development mode.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import dev_secret, load_jwks
from api.problems import Problem, ProblemError, problem_response
from api.settings import Settings
from personkort import devkeys
from personkort.audit.keys import audit_keys

log = logging.getLogger("personkort.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The pages load every script, style, font and image from this host; data: images are the
# design system's and Swagger UI's inline icons.
CSP = (
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_REPLACED = {name for name, _ in SECURITY_HEADERS}
PUBLIC_PATHS = frozenset(
    {"/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json", "/api/v1/docs"}
)
# Stable codes for the errors Starlette and FastAPI raise themselves.
HTTP_CODES = {
    400: "ugyldig_foresporsel",
    401: "ugyldig_token",
    403: "ingen_tilgang",
    404: "ikke_funnet",
    405: "metode_ikke_tillatt",
    406: "ikke_akseptabelt",
    413: "for_stor_foresporsel",
    415: "ugyldig_innholdstype",
    429: "for_mange_foresporsler",
    431: "for_store_hoder",
    500: "intern_feil",
    503: "tjeneste_utilgjengelig",
}
AUDIT_KEY = "PERSONKORT_AUDIT_KEY"
AUDIT_SIGNING_KEY = "PERSONKORT_AUDIT_SIGNING_KEY"
STORE_KEYS = "PERSONKORT_STORE_KEYS"


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Guard every request and make every error problem+json. (The app factory has checked the
    keys with ``check_keys`` before it opened anything.)"""
    app.add_middleware(RequestGuard, settings=settings, owner=app)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)


def check_keys(settings: Settings, store_keys: Callable[[], object] | None = None) -> list[str]:
    """The key settings that are development keys; outside development mode a missing or
    unusable key is a MissingKeyError naming every missing setting (the server must not
    start). A JWT secret under 32 bytes is refused in every mode. ``store_keys`` (the store's
    ``key_ring``, passed in by those allowed to know the store) also parses the store keys, or
    makes the development one before any worker starts."""
    missing: list[str] = []
    development: list[str] = []
    if settings.jwt_secret:
        dev_secret(settings)  # the length check
    if settings.jwt_jwks_file:
        load_jwks(settings.jwt_jwks_file)
    elif not settings.jwt_secret:
        if settings.dev_mode:
            development.append("PERSONKORT_JWT_SECRET")
        else:
            missing.append("PERSONKORT_JWT_SECRET (at least 32 bytes) or PERSONKORT_JWT_JWKS_FILE")
    for name in (AUDIT_KEY, AUDIT_SIGNING_KEY, STORE_KEYS):
        if not os.environ.get(name, "").strip():
            (development if settings.dev_mode else missing).append(name)
    if missing:
        raise devkeys.MissingKeyError(
            "refusing to start: not set: "
            + ", ".join(missing)
            + f" (see .env.example; {devkeys.DEV_MODE}=1 uses development keys instead)"
        )
    if settings.dev_mode and not settings.jwt_secret and not settings.jwt_jwks_file:
        dev_secret(settings)
    audit_keys(settings.data_dir)  # configured keys are parsed, development keys made once
    if store_keys is not None:
        store_keys()
    if settings.dev_mode:
        log.warning(
            "development mode (%s=1): development keys in use for %s; never in production",
            devkeys.DEV_MODE,
            ", ".join(development) or "none (every key is configured)",
        )
    return development


def needs_token(path: str) -> bool:
    """Everything under /api/ needs a bearer token, except health, the OpenAPI document and
    the docs (fail closed: a new route is protected before anyone thinks of it)."""
    if not path.startswith("/api/"):
        return False
    return not (path in PUBLIC_PATHS or path.startswith("/api/v1/docs/"))


FEED_EVENTS_PATH = "/api/v1/folkeregister/hendelser"
FEED_ROLE = "folkeregister"


class RequestGuard:
    """Size limits, authentication before the body, JSON checks and security headers."""

    def __init__(self, app: ASGIApp, settings: Settings, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner  # its state.services.tokens is the TokenVerifier (set after us)
        self.max_body = settings.max_body_bytes
        self.feed_max_body = settings.feed_max_body_bytes
        self.max_headers = settings.max_header_bytes
        self._unavailable = 0  # 503s answered since the last good answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def secure_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() not in _REPLACED
                ]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
                self._note(int(message["status"]))
            await send(message)

        async def refuse(status: int, detail: str, headers: dict[str, str] | None = None) -> None:
            await _problem(status, detail, headers)(scope, receive, secure_send)

        header_bytes = (
            sum(len(k) + len(v) for k, v in scope["headers"])
            + len(scope.get("raw_path") or b"")
            + len(scope.get("query_string") or b"")
        )  # the target counts too: it is a header line
        if header_bytes > self.max_headers:
            await refuse(431, f"The request's headers exceed {self.max_headers} bytes.")
            return
        max_body = self.max_body
        if needs_token(scope["path"]):
            tokens = getattr(getattr(self.owner.state, "services", None), "tokens", None)
            if tokens is None:  # fail closed: no verifier, no request
                log.error("no token verifier at app.state.services.tokens")
                await refuse(503, "The service is not ready.")
                return
            try:
                caseworker = tokens.from_header(_header(scope, b"authorization"))
            except ProblemError as exc:
                await problem_response(exc.problem, exc.headers)(scope, receive, secure_send)
                return
            scope.setdefault("state", {})["caseworker"] = caseworker
            if scope["path"] == FEED_EVENTS_PATH and FEED_ROLE in caseworker.roles:
                max_body = self.feed_max_body  # the population register's batches, no one else's
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            if not declared.isdigit():
                await refuse(400, "Content-Length is not a number.")
            else:
                await refuse(413, f"The request body exceeds {max_body} bytes.")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            body += message.get("body", b"")
            if len(body) > max_body:
                await refuse(413, f"The request body exceeds {max_body} bytes.")
                return
            if not message.get("more_body", False):
                break
        if body:
            content_type = _header(scope, b"content-type")
            if _is_json(content_type):
                try:
                    json.loads(body)
                except (ValueError, RecursionError):
                    await refuse(400, "The request body is not well-formed JSON.")
                    return
            elif scope["path"].startswith("/api/") or not _is_form(content_type):
                # The API takes JSON only; the pages' forms post url-encoded fields too.
                await refuse(415, "A request body must be application/json.")
                return
            if (
                b"\\u0000" in body
                or b"\x00" in body
                or (b"%00" in body and not _is_json(content_type))
            ):
                # No field of ours holds a NUL, and PostgreSQL refuses one in text: a client's
                # slip, not a store outage.
                await refuse(400, "The request body holds a NUL character.")
                return
        replay: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replay_receive() -> Message:
            return replay.pop() if replay else await receive()

        try:
            await self.app(scope, replay_receive, secure_send)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
            where = f"{Path(frame[0].filename).name}:{frame[0].lineno}" if frame else "?"
            # Type and place only: an exception's message may hold an identity number.
            log.error("unhandled error: %s at %s", type(exc).__name__, where)
            if not started:
                await refuse(500, "An internal error occurred.")

    def _note(self, status: int) -> None:
        """Log when answers succeed again after the store or the audit log was unavailable
        (each failure is logged where it happens)."""
        if status == 503:
            self._unavailable += 1
        elif status < 500 and self._unavailable:
            log.warning("recovered: answering again after %d unavailable (503)", self._unavailable)
            self._unavailable = 0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _is_form(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    code = HTTP_CODES.get(status, f"http_{status}")
    return problem_response(
        Problem(
            type=f"https://personkort.nav.no/problems/{code}",
            title=_phrase(status),
            status=status,
            detail=detail,
            code=code,
        ),
        headers,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


DETAILS = {
    400: "The request is malformed.",
    404: "No such resource.",
    405: "The method is not allowed here.",
}


async def handle_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method, unparsable body) as problem+json
    with a stable code; the detail is ours, never the input echoed back."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code if 400 <= exc.status_code <= 599 else 500
    detail = DETAILS.get(status) or _phrase(status)
    return _problem(status, detail, dict(exc.headers) if exc.headers else None)
