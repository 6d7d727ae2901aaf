"""Requests: size limits before parsing, the token before the body, bounded token claims, security
headers on every response and problem+json for every error. Driven through the real app's ASGI
interface, so a test can count how often the body was asked for."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from api.app import create_app
from api.auth import TokenVerifier, dev_secret
from api.middleware import CSP
from api.problems import ProblemError
from api.settings import Settings
from personkort.policy.engine import Caseworker
from tests.api_server import serve
from tests.conftest import run_async

LUND = "27905340064"
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    receives: int  # how often the app asked for (a piece of) the body

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/problem+json"), self.headers
        return json.loads(self.body)


@dataclass
class Client:
    app: FastAPI
    settings: Settings
    seen: list[int] = field(default_factory=list)

    def token(self, **overrides: object) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": "Z111111",
            "employer": "stat",
            "office": "nav-oslo",
            "roles": ["veileder"],
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "iat": now,
            "exp": now + 600,
            **overrides,
        }
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None},
            dev_secret(self.settings),
            algorithm="HS256",
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        chunks: list[bytes] | None = None,
    ) -> Answer:
        """One request; ``chunks`` arrive one per receive, and only when asked for."""
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
        if token is not None:
            raw.append((b"authorization", f"Bearer {token}".encode()))
        pieces = list(chunks or [b""])
        receives = 0
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal receives
            receives += 1
            if pieces:
                body = pieces.pop(0)
                return {"type": "http.request", "body": body, "more_body": bool(pieces)}
            await asyncio.sleep(3600)  # nothing more: the client waits
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 1234),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        run_async(asyncio.wait_for(self.app(scope, receive, send), timeout=30))
        start = next(m for m in sent if m["type"] == "http.response.start")
        return Answer(
            start["status"],
            {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
            receives,
        )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(store_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=str(tmp_path))
    yield Client(create_app(settings), settings)


def _json(body: object) -> dict[str, str]:
    return {"content-type": "application/json", "content-length": str(len(json.dumps(body)))}


def test_an_unauthenticated_body_is_never_read(client: Client) -> None:
    ten_mb = 10 * 1024 * 1024
    answer = client.call(
        "POST",
        "/api/v1/personkort",
        headers={"content-type": "application/json", "content-length": str(ten_mb)},
        chunks=[b"x" * 65_536] * 160,
    )
    assert answer.status == 401 and answer.receives == 0
    assert answer.problem()["code"] == "ugyldig_token"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    bad = client.call("POST", "/api/v1/consents", token="not.a.token", chunks=[b"{}"])
    assert bad.status == 401 and bad.receives == 0


def test_public_paths_need_no_token_and_unknown_api_paths_do(client: Client) -> None:
    assert client.call("GET", "/api/v1/openapi.json").status == 200
    assert client.call("GET", "/api/v1/docs").status == 200
    assert client.call("GET", "/api/v1/no-such-thing").status == 401  # fail closed
    assert client.call("GET", "/api/v1/health/../steward/nights").status == 401


def test_a_body_over_the_limit_is_refused_while_streaming(client: Client) -> None:
    token = client.token()
    chunk = b" " * 16_384
    # No Content-Length (chunked): reading stops once the limit is passed.
    chunked = client.call("POST", "/api/v1/personkort", token=token, chunks=[chunk] * 100)
    assert chunked.status == 413 and chunked.problem()["code"] == "for_stor_foresporsel"
    assert chunked.receives == 5  # 4 x 16 KiB fit in 64 KiB, the fifth piece passes it
    # A Content-Length that lies about a larger body.
    lying = client.call(
        "POST",
        "/api/v1/personkort",
        token=token,
        headers={"content-type": "application/json", "content-length": "10"},
        chunks=[chunk] * 100,
    )
    assert lying.status == 413 and lying.receives == 5
    # An honest one that is too large is refused before the body is read.
    honest = client.call(
        "POST",
        "/api/v1/personkort",
        token=token,
        headers={"content-type": "application/json", "content-length": "65537"},
        chunks=[b"x" * 65_537],
    )
    assert honest.status == 413 and honest.receives == 0


def test_headers_over_the_limit_are_431_before_anything_else(client: Client) -> None:
    answer = client.call("POST", "/api/v1/personkort", headers={"x-padding": "a" * 17_000})
    assert answer.status == 431 and answer.receives == 0
    assert answer.problem()["code"] == "for_store_hoder"
    assert client.call("GET", "/api/v1/health", headers={"x-padding": "a" * 15_000}).status == 200


def test_bodies_must_be_well_formed_json(client: Client) -> None:
    token = client.token()
    for body in (b'{"ident": ', b"\xff\xfe{", b"[" * 60_000):
        answer = client.call(
            "POST", "/api/v1/personkort", token=token, headers=_json({}), chunks=[body]
        )
        assert answer.status == 400, body[:10]
        assert answer.problem()["code"] == "ugyldig_foresporsel"
        assert b"ident" not in answer.body  # the input is never echoed
    plain = client.call(
        "POST",
        "/api/v1/personkort",
        token=token,
        headers={"content-type": "text/plain"},
        chunks=[json.dumps({"ident": LUND}).encode()],
    )
    assert plain.status == 415 and plain.problem()["code"] == "ugyldig_innholdstype"
    assert LUND.encode() not in plain.body


def test_every_error_is_problem_json_with_a_stable_code(client: Client) -> None:
    token = client.token()
    unknown = client.call("GET", "/nowhere")
    assert unknown.status == 404 and unknown.problem()["code"] == "ikke_funnet"
    unknown_api = client.call("GET", "/api/v1/nowhere", token=token)
    assert unknown_api.status == 404 and unknown_api.problem()["code"] == "ikke_funnet"
    wrong_method = client.call("GET", "/api/v1/personkort", token=token)
    assert wrong_method.status == 405
    assert wrong_method.problem()["code"] == "metode_ikke_tillatt"
    assert "POST" in wrong_method.headers["allow"]
    wrong_method_public = client.call("DELETE", "/api/v1/health")
    assert wrong_method_public.problem()["code"] == "metode_ikke_tillatt"


def test_security_headers_on_every_response(client: Client) -> None:
    token = client.token()
    answers = [
        client.call("GET", "/api/v1/health"),
        client.call("GET", "/api/v1/openapi.json"),
        client.call("POST", "/api/v1/personkort"),  # 401
        client.call("GET", "/nowhere"),  # 404
        client.call("GET", "/api/v1/personkort", token=token),  # 405
        client.call("GET", "/", headers={"x-padding": "a" * 17_000}),  # 431
        client.call("POST", "/api/v1/personkort", token=token, chunks=[b"[" * 70_000]),  # 413
        client.call("POST", "/api/v1/personkort", token=token, headers=_json({}), chunks=[b"{"]),
    ]
    assert {a.status for a in answers} == {200, 401, 404, 405, 431, 413, 400}
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.status, name)


def test_the_verified_caseworker_is_kept_for_the_routes(tmp_path: Path) -> None:
    verifier = TokenVerifier(Settings(data_dir=str(tmp_path)))
    known = Caseworker("Z9", "stat", "nav-oslo", frozenset({"veileder"}))
    request = Request({"type": "http", "headers": [], "state": {"caseworker": known}})
    assert verifier.caseworker(request) is known
    with pytest.raises(ProblemError):  # no verified caseworker and no header: 401
        verifier.caseworker(Request({"type": "http", "headers": [], "state": {}}))


# --- tokens -----------------------------------------------------------------------------------


def _refused(client: Client, token: str) -> bool:
    verifier = client.app.state.services.tokens
    try:
        verifier.verify(token)
    except ProblemError as exc:
        assert exc.problem.status == 401
        return True
    return False


def test_exp_must_be_a_number_on_every_use(client: Client) -> None:
    far = int(time.time()) + 600
    for exp in (str(far), True, [far], {"t": far}, None):
        token = client.token(exp=exp)
        for _ in range(2):  # the second use used to be a 500 from the verified-token cache
            answer = client.call("POST", "/api/v1/personkort", token=token)
            assert answer.status == 401, exp
    assert not _refused(client, client.token(exp=far + 0.5))


def test_a_token_lives_at_most_the_configured_lifetime(client: Client) -> None:
    now = int(time.time())
    limit = client.settings.token_max_lifetime_seconds
    assert limit == 12 * 3600
    assert _refused(client, client.token(iat=now, exp=now + limit + 60))
    assert _refused(client, client.token(iat=None, exp=now + limit + 3600))
    assert _refused(client, client.token(iat=now - 3600, exp=now + limit - 60))  # exp - iat
    assert _refused(client, client.token(iat="now"))
    assert not _refused(client, client.token(iat=now, exp=now + limit - 60))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "Z" * 41},
        {"sub": ""},
        {"sub": "Z1\x1b[31m"},
        {"sub": "Z1\u2028"},
        {"sub": "Z1\u200b"},
        {"sub": "Z1 Z2"},
        {"sub": LUND},
        {"sub": "279.053.400-64"},
        {"sub": 123456},
        {"office": "o" * 65},
        {"office": "nav\nOslo"},
        {"roles": "veileder"},
        {"roles": ["veileder", 7]},
        {"roles": ["v" * 33]},
        {"roles": ["veileder"] * 17},
        {"pid": "12345678901"},  # fails its control digits
        {"pid": 45884714684},
        {"pid": "4588471468"},
    ],
)
def test_claims_are_bounded(client: Client, claims: dict[str, object]) -> None:
    assert _refused(client, client.token(**claims))


def test_pid_is_normalised_like_any_identity_number(client: Client) -> None:
    verifier = client.app.state.services.tokens
    spaced = verifier.from_header(f"Bearer {client.token(pid='458847 14684')}")
    plain = verifier.from_header(f"Bearer {client.token(pid='45884714684')}")
    assert spaced.pid == plain.pid == "45884714684"
    assert not _refused(client, client.token(sub="123e4567-e89b-12d3-a456-426614174000"))


def test_over_real_http_a_big_unauthenticated_body_and_huge_headers_are_refused(
    client: Client,
) -> None:
    with serve(client.app) as url:
        body = httpx.post(
            f"{url}/api/v1/personkort",
            content=b"x" * (10 * 1024 * 1024),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert body.status_code == 401 and body.json()["code"] == "ugyldig_token"
        headers = httpx.get(f"{url}/api/v1/health", headers={"x-big": "a" * 8_000_000}, timeout=60)
        assert headers.status_code == 431 and headers.json()["code"] == "for_store_hoder"
        assert headers.headers["cache-control"] == "no-store"
