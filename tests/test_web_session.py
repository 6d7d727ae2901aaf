"""The pages' session over real HTTP: sign-in only in development mode, cookies that fail any
token check are no session, sign-out needs the CSRF token, and the guard's body rules."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth import mint
from api.settings import Settings
from tests.api_server import serve
from web.session import SESSION_COOKIE, SIGNIN_COOKIE, session_audience


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def dev_site(store_url: str, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"), dev_mode=True)
    with serve(create_app(settings)) as url:
        yield url, settings


def _signed_in(url: str, sub: str = "Z100001") -> httpx.Client:
    client = httpx.Client(base_url=url)
    page = client.get("/logg-inn")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce, page.text
    done = client.post("/logg-inn", data={"bruker": sub, "nonce": nonce.group(1)})
    assert done.status_code == 303, done.text
    return client


def test_sign_in_sets_the_session_and_the_page_greets_the_user(
    dev_site: tuple[str, Settings],
) -> None:
    url, _ = dev_site
    client = _signed_in(url)
    assert client.cookies.get(SESSION_COOKIE)
    assert "Kari Statlig" in client.get("/").text


def test_a_cookie_signed_with_another_key_expired_or_for_the_api_is_no_session(
    dev_site: tuple[str, Settings], tmp_path: Path
) -> None:
    url, settings = dev_site
    claims = {"sub": "Z100001", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}
    other = Settings(data_dir=str(tmp_path / "other"), dev_mode=True)
    audience = session_audience(settings)
    for token in (
        mint(other, {**claims, "jti": "a"}, audience=session_audience(other)),
        mint(settings, {**claims, "jti": "b"}, lifetime_seconds=-120, audience=audience),
        mint(settings, {**claims, "jti": "c"}),  # an API token is no session
        mint(settings, claims, audience=audience),  # no session id: not made by the sign-in
    ):
        response = httpx.get(f"{url}/", cookies={SESSION_COOKIE: token})
        assert response.status_code == 303
        assert response.headers["location"] == "/logg-inn"


def test_sign_out_needs_the_sessions_csrf_token(dev_site: tuple[str, Settings]) -> None:
    url, _ = dev_site
    client = _signed_in(url)
    forged = client.post("/logg-ut", data={"csrf": "forged"})
    assert forged.status_code == 403
    # A page's refusal is a page in words (htmx would put JSON on the screen), with the code.
    assert forged.headers["content-type"].startswith("text/html")
    assert 'data-code="csrf_avvist"' in forged.text and "Skjemaet kom ikke" in forged.text
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert token
    out = client.post("/logg-ut", data={"csrf": token.group(1)})
    assert out.status_code == 303
    assert SESSION_COOKIE not in out.cookies or not out.cookies.get(SESSION_COOKIE)


def test_a_sign_in_nonce_from_another_browser_is_refused(dev_site: tuple[str, Settings]) -> None:
    url, _ = dev_site
    mine, theirs = httpx.Client(base_url=url), httpx.Client(base_url=url)
    nonce = re.search(r'name="nonce" value="([^"]+)"', theirs.get("/logg-inn").text)
    assert nonce
    mine.get("/logg-inn")  # a cookie of its own, with another value
    response = mine.post("/logg-inn", data={"bruker": "Z100001", "nonce": nonce.group(1)})
    assert response.status_code == 403
    assert not response.cookies.get(SESSION_COOKIE)


def test_the_guard_takes_forms_outside_the_api_only(dev_site: tuple[str, Settings]) -> None:
    url, settings = dev_site
    token = mint(settings, {"sub": "Z1", "employer": "stat", "office": "o", "roles": ["veileder"]})
    api = httpx.post(
        f"{url}/api/v1/personkort",
        content="ident=01010112345",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert api.status_code == 415
    nul = httpx.post(f"{url}/logg-inn", data={"bruker": "Z1\x00", "nonce": "n"})
    assert nul.status_code == 400
    multipart = httpx.post(f"{url}/logg-inn", files={"f": ("a.txt", b"x")})
    assert multipart.status_code == 415


def test_outside_development_mode_there_is_no_demo_sign_in(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONKORT_DEV_MODE", raising=False)
    monkeypatch.setenv("PERSONKORT_AUDIT_KEY", _key())
    monkeypatch.setenv("PERSONKORT_AUDIT_SIGNING_KEY", _key())
    monkeypatch.setenv("PERSONKORT_STORE_KEYS", f"k1:{_key()}")
    settings = Settings(
        store_url=store_url,
        data_dir=str(tmp_path / "data"),
        dev_mode=False,
        jwt_secret=secrets.token_urlsafe(48),
    )
    with serve(create_app(settings)) as url:
        client = httpx.Client(base_url=url)
        page = client.get("/logg-inn")
        assert page.status_code == 200
        assert "Z100001" not in page.text  # no picker
        nonce = client.cookies.get(SIGNIN_COOKIE)
        refused = client.post("/logg-inn", data={"bruker": "Z100001", "nonce": nonce or ""})
        assert refused.status_code == 400
        assert not refused.cookies.get(SESSION_COOKIE)
