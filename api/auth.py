"""Bearer tokens: signature, expiry, issuer, audience and the claims a caseworker needs.

Keys come from settings: an HS256 secret, or the public keys of a JWKS document. Any token that
fails a check is a 401 with no detail about which check: the reason is logged for operators
without the token itself.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from fastapi import Request

from api.problems import ProblemError
from api.settings import Settings
from personkort.policy.engine import Caseworker

log = logging.getLogger("personkort.api.auth")
REQUIRED_CLAIMS = ("sub", "employer", "office", "roles", "exp", "iss", "aud")
ASYMMETRIC = ["RS256", "ES256", "EdDSA"]


def dev_secret(settings: Settings) -> str:
    """The HS256 secret: from settings, else one generated once under the data folder."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = Path(settings.data_dir) / "dev-keys" / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jwks: dict[str, Any] | None = None
        self.secret: str | None = None
        self._verified: dict[str, dict[str, Any]] = {}
        if settings.jwt_jwks_file:
            document = json.loads(Path(settings.jwt_jwks_file).read_text())
            self.jwks = {key["kid"]: jwt.PyJWK(key) for key in document["keys"] if "kid" in key}
        else:
            self.secret = dev_secret(settings)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or a 401. A token that passed once is remembered (by its exact
        text) until it expires, so a caseworker's next lookups skip the signature check;
        expiry is still checked every time."""
        known = self._verified.get(token)
        if known is not None and known["exp"] + self.settings.jwt_leeway_seconds > time.time():
            return known
        claims = self._verify(token)
        if len(self._verified) >= 10_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            if self.jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                if kid not in self.jwks:
                    raise jwt.InvalidTokenError("unknown key id")
                key, algorithms = self.jwks[kid].key, ASYMMETRIC
            else:
                key, algorithms = self.secret, ["HS256"]
            claims = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            log.info("token refused: %s", type(exc).__name__)
            raise unauthorized() from None
        if not _claims_ok(claims):
            log.info("token refused: malformed claims")
            raise unauthorized()
        return claims

    def caseworker(self, request: Request) -> Caseworker:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        claims = self.verify(token.strip())
        return Caseworker(
            sub=claims["sub"],
            employer=claims["employer"],
            office=claims["office"],
            roles=frozenset(claims["roles"]),
            pid=claims.get("pid"),
        )


def _claims_ok(claims: dict[str, Any]) -> bool:
    employer = claims.get("employer")
    roles = claims.get("roles")
    employer_ok = isinstance(employer, str) and (
        employer == "stat"
        or (employer.startswith("kommune:") and len(employer) == 12 and employer[8:].isdigit())
    )
    return (
        employer_ok
        and isinstance(claims.get("sub"), str)
        and bool(claims["sub"])
        and isinstance(claims.get("office"), str)
        and isinstance(roles, list)
        and all(isinstance(r, str) for r in roles)
        and (claims.get("pid") is None or isinstance(claims.get("pid"), str))
    )


def unauthorized() -> ProblemError:
    return ProblemError(
        401,
        "ugyldig_token",
        "Unauthorized",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": 'Bearer realm="personkort"'},
    )


def mint(settings: Settings, claims: dict[str, Any], lifetime_seconds: int = 8 * 3600) -> str:
    """A development token signed with the configured HS256 secret."""
    now = int(time.time())
    payload = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + lifetime_seconds,
        **claims,
    }
    return jwt.encode(payload, dev_secret(settings), algorithm="HS256")
