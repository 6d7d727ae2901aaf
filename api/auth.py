"""Bearer tokens: signature, expiry, issuer, audience and the claims a caseworker needs.

Keys come from settings: an HS256 secret of at least 32 bytes, or the public keys of a JWKS
document; a development secret only in development mode. Any token that fails a check is a 401
with no detail about which check: the reason class is logged for operators, never the token or
anything in it.

The claims are bounded here because they travel on: ``sub`` and ``office`` into indexed audit
columns, ``pid`` into the gate's own-data check, ``exp`` into the verified-token cache.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import time
from pathlib import Path
from typing import Any, NoReturn

import jwt
from fastapi import Request

from api.problems import ProblemError
from api.settings import Settings
from personkort import devkeys
from personkort.audit.scrub import find_idents
from personkort.ident import IdentError, parse
from personkort.policy.engine import Caseworker

log = logging.getLogger("personkort.api.auth")
REQUIRED_CLAIMS = ("sub", "employer", "office", "roles", "exp", "iss", "aud")
ASYMMETRIC = ["RS256", "ES256", "EdDSA"]
MIN_SECRET_BYTES = 32
SUB_MAX = 40  # audit_event.caseworker is String(40)
OFFICE_MAX = 64
ROLE_MAX = 32
ROLES_MAX = 16
# An identity number must never be a caseworker's id or office (it would be scrubbed, lengthened,
# and land in an audit column). A group of digits with what people type between them holding
# eleven digits is an identity number's shape (a longer run, as in some UUIDs, is not).
_DIGIT_GROUP = re.compile(r"\d(?:[.\-_/:\u00a0]*\d)*")


class KeyConfigError(devkeys.MissingKeyError):
    """The token keys are missing or unusable."""


class TokenRefused(Exception):
    """Why a token was refused, as a reason class that is safe to log."""


def dev_secret(settings: Settings) -> str:
    """The HS256 secret: from settings (at least 32 bytes, in every mode), else the development
    secret under the data folder, in development mode only."""
    if settings.jwt_secret:
        if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise KeyConfigError(
                f"PERSONKORT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                "(e.g. openssl rand -base64 48)"
            )
        return settings.jwt_secret
    if not settings.dev_mode:
        raise KeyConfigError(
            "PERSONKORT_JWT_SECRET (at least 32 bytes) or PERSONKORT_JWT_JWKS_FILE is not set: "
            f"set one, or {devkeys.DEV_MODE}=1 for a development secret"
        )
    return devkeys.dev_key(
        settings.data_dir,
        "jwt-secret",
        lambda: secrets.token_urlsafe(48),
        "PERSONKORT_JWT_SECRET",
        dev=True,
    )


def load_jwks(path: str) -> dict[str, jwt.PyJWK]:
    """The public keys of a JWKS document by key id; a document with none is refused."""
    try:
        document = json.loads(Path(path).read_text())
        keys = {key["kid"]: jwt.PyJWK(key) for key in document["keys"] if "kid" in key}
    except (OSError, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise KeyConfigError(
            f"PERSONKORT_JWT_JWKS_FILE {path} is unusable: {type(exc).__name__}"
        ) from None
    if not keys:
        raise KeyConfigError(f"PERSONKORT_JWT_JWKS_FILE {path} has no key with a kid")
    return keys


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks: dict[str, jwt.PyJWK] | None = None
        self.secret: str | None = None
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}
        if settings.jwt_jwks_file:
            self.jwks = load_jwks(settings.jwt_jwks_file)
            if settings.jwt_secret:
                dev_secret(settings)  # a short secret is refused even when a JWKS is used
        else:
            self.secret = dev_secret(settings)

    def verify(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The token's claims, or a 401. A token that passed once is remembered (by its exact
        text and audience) until it expires, so a caseworker's next lookups skip the signature
        check; expiry is still checked every time (``exp`` is known to be a number by then).
        ``audience``: another than the API's (the pages' session tokens have their own, so a
        copied session cookie is no API token)."""
        audience = audience or self.settings.jwt_audience
        known = self._verified.get((audience, token))
        if known is not None:
            if known["exp"] + self.settings.jwt_leeway_seconds > time.time():
                return known
            self._verified.pop((audience, token), None)
            _refused("ExpiredSignatureError")
        claims = self._verify(token, audience)
        if len(self._verified) >= 10_000:
            self._verified.clear()
        self._verified[(audience, token)] = claims
        return claims

    def _verify(self, token: str, audience: str) -> dict[str, Any]:
        try:
            if self.jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                if not isinstance(kid, str) or kid not in self.jwks:
                    raise jwt.InvalidTokenError("unknown key id")
                key, algorithms = self.jwks[kid].key, ASYMMETRIC
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                audience=audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            _refused(type(exc).__name__)
        except Exception as exc:  # a hostile token must give 401, never 500
            _refused(f"undecodable ({type(exc).__name__})")
        try:
            return self._checked(claims)
        except TokenRefused as exc:
            _refused(str(exc))

    def _checked(self, claims: dict[str, Any]) -> dict[str, Any]:
        """The claims with ``pid`` normalised, or TokenRefused naming the failed check."""
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _number(exp):
            raise TokenRefused("exp not a number")
        if iat is not None and not _number(iat):
            raise TokenRefused("iat not a number")
        limit = self.settings.token_max_lifetime_seconds
        if exp - now > limit + self.settings.jwt_leeway_seconds:
            raise TokenRefused("exp too far ahead")
        if iat is not None and exp - iat > limit:
            raise TokenRefused("lifetime too long")
        if not _employer_ok(claims.get("employer")):
            raise TokenRefused("employer")
        if not _bounded_text(claims.get("sub"), SUB_MAX):
            raise TokenRefused("sub")
        if not _bounded_text(claims.get("office"), OFFICE_MAX):
            raise TokenRefused("office")
        roles = claims.get("roles")
        if not (
            isinstance(roles, list)
            and len(roles) <= ROLES_MAX
            and all(_bounded_text(r, ROLE_MAX) for r in roles)
        ):
            raise TokenRefused("roles")
        pid = claims.get("pid")
        if pid is not None:
            if not isinstance(pid, str) or len(pid) > 32:
                raise TokenRefused("pid")
            try:
                claims["pid"] = parse(pid).value
            except IdentError:
                raise TokenRefused("pid not a valid identity number") from None
        return claims

    def caseworker(self, request: Request) -> Caseworker:
        """The request's caseworker: the one the middleware verified before the body was read,
        else from the Authorization header."""
        known = request.scope.get("state", {}).get("caseworker")
        if isinstance(known, Caseworker):
            return known
        return self.from_header(request.headers.get("authorization"))

    def from_header(self, header: str | None) -> Caseworker:
        """The caseworker of an ``Authorization: Bearer`` header value, or a 401."""
        if not header:
            _refused("no bearer token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _refused("not a bearer token")
        claims = self.verify(token.strip())
        return Caseworker(
            sub=claims["sub"],
            employer=claims["employer"],
            office=claims["office"],
            roles=frozenset(claims["roles"]),
            pid=claims.get("pid"),
        )


def _refused(reason: str) -> NoReturn:
    """Log the reason class (never the token or its claims) and raise the 401."""
    log.warning("token refused: %s", reason)
    raise unauthorized()


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounded_text(value: object, limit: int) -> bool:
    """1..limit printable characters, no whitespace, and no identity number inside."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and value.isprintable()
        and not any(c.isspace() for c in value)
        and not _holds_ident(value)
    )


def _holds_ident(value: str) -> bool:
    """An identity number in any shape the audit log's scrubber finds (or a plain group)."""
    return bool(find_idents(value)) or any(
        sum(c.isdigit() for c in group) == 11 for group in _DIGIT_GROUP.findall(value)
    )


def _employer_ok(employer: object) -> bool:
    return isinstance(employer, str) and (
        employer == "stat"
        or (
            employer.startswith("kommune:")
            and len(employer) == 12
            and employer[8:].isascii()
            and employer[8:].isdigit()
        )
    )


def unauthorized() -> ProblemError:
    return ProblemError(
        401,
        "ugyldig_token",
        "Unauthorized",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": 'Bearer realm="personkort"'},
    )


def mint(
    settings: Settings,
    claims: dict[str, Any],
    lifetime_seconds: int = 8 * 3600,
    audience: str | None = None,
) -> str:
    """A development token signed with the configured HS256 secret (or the development one).
    A lifetime over ``token_max_lifetime_seconds`` is refused: the API would not accept it."""
    if lifetime_seconds > settings.token_max_lifetime_seconds:
        raise ValueError(
            f"a token may live at most {settings.token_max_lifetime_seconds} s "
            "(PERSONKORT_TOKEN_MAX_LIFETIME_SECONDS)"
        )
    now = int(time.time())
    payload = {
        "iss": settings.jwt_issuer,
        "aud": audience or settings.jwt_audience,
        "iat": now,
        "exp": now + lifetime_seconds,
        **claims,
    }
    return jwt.encode(payload, dev_secret(settings), algorithm="HS256")
