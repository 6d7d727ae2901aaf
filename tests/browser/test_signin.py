"""The development sign-in, the session cookie, CSRF, and the offline API docs, in a browser."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser.conftest import Site, assert_accessible, shoot, sign_in
from web.session import SESSION_COOKIE


def test_sign_in_with_the_keyboard_sets_a_strict_httponly_cookie(page: Any, site: Site) -> None:
    page.goto("/")
    assert page.url.endswith("/logg-inn")  # no session: the sign-in first
    assert_accessible(page, "sign-in")
    shoot(page, "innlogging")
    sign_in(page, "Z300001")
    assert page.url.endswith("/revisor")
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read the session


def test_a_form_without_the_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, "Z100001")
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    jar = {SESSION_COOKIE: cookie["value"]}
    # Same cookie, no token; then a token but another site's origin.
    refused = httpx.post(f"{site.url}/logg-ut", cookies=jar, data={"csrf": "x"})
    assert refused.status_code == 403
    foreign = httpx.post(
        f"{site.url}/logg-ut",
        cookies=jar,
        data={"csrf": "x"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert foreign.status_code == 403


def test_the_cookie_does_not_open_the_api(page: Any, site: Site) -> None:
    sign_in(page, "Z100001")
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    response = httpx.post(
        f"{site.url}/api/v1/personkort",
        cookies={SESSION_COOKIE: cookie["value"]},
        json={"ident": "01010112345"},
    )
    assert response.status_code == 401  # the API takes a bearer token only


def test_a_forged_sign_in_is_refused(site: Site) -> None:
    response = httpx.post(f"{site.url}/logg-inn", data={"bruker": "Z100001", "nonce": "guess"})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_api_docs_render_offline(page: Any, site: Site) -> None:
    page.goto("/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "personkort" in page.inner_text(".swagger-ui .info .title")
    shoot(page, "api-dokumentasjon")
