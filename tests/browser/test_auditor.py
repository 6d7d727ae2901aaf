"""The auditors' view in a browser, keyboard only: find the lookups just made by person, filter
denials and kode 6 / skjermet openings, verify the chain, download CSV, open a person's
printable access report, compare policy versions; a non-auditor is refused."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.auth import mint
from personkort.audit import AuditLog
from personkort.services.policies import PolicyHolder
from tests.browser.conftest import Site, assert_accessible, shoot, sign_in
from tests.conftest import SAMPLE
from web.demo import BY_SUB

PURPOSE = "Klage på vedtak om arbeidsavklaringspenger, sak 2026-77"


def _persons() -> list[dict[str, str]]:
    with (SAMPLE / "night1" / "truth" / "persons.csv").open(encoding="utf-8", newline="") as f:
        return [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]


def _plain(p: dict[str, str]) -> bool:
    return not p["adressebeskyttelse"] and p["skjermet"] == "0" and not p["dodsdato"]


def _known(p: dict[str, str]) -> bool:
    return "1" in (p["in_arena"], p["in_infotrygd"], p["in_kommune"])


PLAIN = next(p["fnr"] for p in _persons() if _plain(p) and _known(p) and p["fnr"])
SKJERMET = next(
    p["fnr"]
    for p in _persons()
    if p["skjermet"] == "1" and not p["adressebeskyttelse"] and _known(p) and p["fnr"]
)


def _lookup(site: Site, sub: str, ident: str, purpose: str | None = None) -> httpx.Response:
    token = mint(site.settings, BY_SUB[sub].claims)
    body: dict[str, Any] = {"ident": ident} | ({"purpose": purpose} if purpose else {})
    return httpx.post(
        f"{site.url}/api/v1/personkort",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _type_into(page: Any, selector: str, text: str) -> None:
    """Focus a field, clear it and type, with the keyboard."""
    page.locator(selector).focus()
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    if text:
        page.keyboard.type(text)


def _search(page: Any) -> Any:
    page.locator("#sok-knapp").focus()
    with page.expect_response(lambda r: r.url.endswith("/revisor/sok")):
        page.keyboard.press("Enter")
    heading = page.locator("#treff-overskrift")
    heading.wait_for()
    return heading


def _traces(page: Any) -> list[str]:
    return page.locator("#treff-tabell tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.sporing)"
    )


def test_auditor_finds_the_lookups_just_made_and_verifies_the_chain(
    page: Any, site: Site, tmp_path: Path
) -> None:
    state = _lookup(site, "Z100001", PLAIN)
    municipal = _lookup(site, "K320501", PLAIN)
    assert state.status_code == 200 and municipal.status_code == 200, state.text
    made = [state.json()["trace_id"], municipal.json()["trace_id"]]

    sign_in(page, "Z300001")
    assert page.url.endswith("/revisor")
    assert_accessible(page, "auditor start")
    shoot(page, "revisor-start", tmp_path)

    _type_into(page, "#sok-ident", f"{PLAIN[:6]} {PLAIN[6:]}")
    with page.expect_response(lambda r: r.url.endswith("/revisor/sok")):
        page.keyboard.press("Enter")  # Enter in the number field sends the search
    heading = page.locator("#treff-overskrift")
    heading.wait_for()
    assert page.evaluate("document.activeElement.id") == "treff-overskrift"
    traces = _traces(page)
    assert traces[: len(made)] == made  # oldest first: the two lookups, then the search itself
    rows = page.locator("#treff-tabell tbody tr")
    first = rows.nth(0).inner_text()
    assert "Oppslag" in first and "Z100001" in first and "nav-lillestrom" in first
    assert "kommunal (kommune 3205)" in rows.nth(1).inner_text()
    assert "Revisjonssøk" in rows.nth(len(made)).inner_text()
    assert PLAIN not in page.url
    assert_accessible(page, "auditor results by person")
    shoot(page, "revisor-treff-person", tmp_path)

    # The same search as CSV: its criteria travel in the body; the file names no number.
    page.locator("#last-ned-csv").focus()
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["sporings_id"] for r in table][: len(made)] == made
    assert [r["utfall"] for r in table][: len(made)] == [
        "partial" if state.json()["withheld"] else "permit",
        "partial" if municipal.json()["withheld"] else "permit",
    ]
    assert PLAIN not in text

    page.locator("#kontroller-knapp").focus()
    with page.expect_response(lambda r: r.url.endswith("/revisor/verifiser")):
        page.keyboard.press("Enter")
    answer = page.locator("#kontroll-svar")
    answer.wait_for()
    assert answer.get_attribute("data-ok") == "ja"
    assert "Loggen er hel" in answer.inner_text()
    assert page.evaluate("document.activeElement.closest('#kontroll') !== null")
    assert_accessible(page, "auditor verify ok")
    shoot(page, "revisor-kontroll-ok", tmp_path)


def test_auditor_filters_denials_and_privileged_openings(
    page: Any, site: Site, tmp_path: Path
) -> None:
    denied = _lookup(site, "Z100001", SKJERMET)
    opened = _lookup(site, "Z100006", SKJERMET, PURPOSE)
    assert denied.status_code == 403 and opened.status_code == 200, opened.text

    sign_in(page, "Z300001")
    _type_into(page, "#sok-ident", SKJERMET)
    page.locator("#sok-avslag").focus()
    page.keyboard.press("Space")
    _search(page)
    assert _traces(page) == [denied.json()["trace_id"]]
    row = page.locator("#treff-tabell tbody tr").first.inner_text()
    assert "Nektet" in row and "skjermet person" in row
    assert_accessible(page, "auditor denials")
    shoot(page, "revisor-avslag", tmp_path)

    page.locator("#sok-avslag").focus()
    page.keyboard.press("Space")
    page.locator("#sok-privilegert").focus()
    page.keyboard.press("Space")
    _search(page)
    assert _traces(page) == [opened.json()["trace_id"]]
    row = page.locator("#treff-tabell tbody tr").first.inner_text()
    assert PURPOSE in row and "Åpnet med skjermet-tilgang" in row and "Z100006" in row
    assert_accessible(page, "auditor privileged openings")
    shoot(page, "revisor-kode6-skjermet", tmp_path)

    # By caseworker instead of person: every row is that caseworker's.
    _type_into(page, "#sok-ident", "")
    _type_into(page, "#sok-saksbehandler", "Z100006")
    _search(page)
    assert opened.json()["trace_id"] in _traces(page)
    subs = page.locator("#treff-tabell tbody tr td:nth-child(4)").all_inner_texts()
    assert subs and set(subs) == {"Z100006"}
    _type_into(page, "#sok-saksbehandler", "")

    # A number that is not one is refused in plain words, where the results go.
    _type_into(page, "#sok-ident", "12345")
    page.locator("#sok-privilegert").focus()
    page.keyboard.press("Space")
    page.locator("#sok-knapp").focus()
    with page.expect_response(lambda r: r.url.endswith("/revisor/sok")):
        page.keyboard.press("Enter")
    problem = page.locator("#treff #problem")
    problem.wait_for()
    assert problem.get_attribute("data-code") == "ugyldig_ident"
    assert_accessible(page, "auditor invalid number")
    shoot(page, "revisor-ugyldig-nummer", tmp_path)


def test_access_report_for_one_person_is_printable(page: Any, site: Site, tmp_path: Path) -> None:
    made = [
        _lookup(site, "K030101", PLAIN).json()["trace_id"],
        _lookup(site, "Z100001", PLAIN).json()["trace_id"],
    ]
    sign_in(page, "Z300001")
    page.goto("/revisor/innsyn")
    assert_accessible(page, "access report form")
    _type_into(page, "#innsyn-ident", PLAIN)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert PLAIN not in page.url
    assert page.evaluate("document.activeElement.id") == "innsyn-overskrift"
    rows = page.locator("#innsyn-tabell tbody tr")
    traces = rows.evaluate_all("rows => rows.map(r => r.dataset.sporing)")
    assert traces[-2:] == made  # every lookup so far in this module, oldest first
    last = rows.nth(rows.count() - 2).inner_text()
    assert "NAV Oslo" in last and "Kommunal (kommune 0301)" in last and "Rolle: veileder" in last
    report = page.locator("article.innsyn").inner_text()
    assert "K030101" not in report and "Z100001" not in report  # office and role, not names
    assert page.locator("#innsyn-antall").inner_text() == str(rows.count())
    assert_accessible(page, "access report")
    shoot(page, "revisor-innsynsrapport", tmp_path)
    page.emulate_media(media="print")
    assert not page.locator("#skriv-ut").is_visible()
    assert not page.locator(".revisor-meny").is_visible()
    assert not page.locator("header.topp").is_visible()
    shoot(page, "revisor-innsynsrapport-utskrift", tmp_path)


def test_policy_versions_side_by_side(page: Any, site: Site, tmp_path: Path) -> None:
    # A second version, activated the way the server does it: a changed folder, reloaded.
    folder = tmp_path / "policy"
    shutil.copytree(Path(__file__).parents[2] / "policies" / "default", folder)
    rules = folder / "rules.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("max_months: 12", "max_months: 6"),
        encoding="utf-8",
    )
    audit = AuditLog.from_settings(site.engine, site.settings.data_dir)
    try:
        PolicyHolder(str(folder), site.engine, audit).reload()
    finally:
        audit.close()

    sign_in(page, "Z300001")
    page.goto("/revisor/policy")
    versions = page.locator("#policy-tabell tbody tr")
    assert versions.count() >= 2
    assert "tjenesten, ved oppstart" in versions.first.inner_text()
    assert_accessible(page, "policy versions")
    page.locator("#sammenlign-knapp").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    diff = page.locator("#policy-diff").inner_text()
    assert "Fjernet" in diff and "max_months: 12" in diff
    assert "Lagt til" in diff and "max_months: 6" in diff
    assert "1 linje lagt til, 1 fjernet" in page.locator("#forskjell-svar").inner_text()
    assert page.evaluate("document.activeElement.id") == "forskjell-svar"
    assert_accessible(page, "policy diff")
    shoot(page, "revisor-policy-forskjell", tmp_path)


def test_a_broken_chain_is_named_at_its_first_bad_event(
    page: Any, site: Site, tmp_path: Path
) -> None:
    made = _lookup(site, "Z100001", PLAIN).json()["trace_id"]
    # What an insider with database access does: rewrite one event's body in place.
    with site.engine.begin() as conn:
        seq, body = conn.execute(
            sa.text("SELECT seq, body FROM audit_event WHERE trace_id = :t"), {"t": made}
        ).one()
        forged = body.replace('"sub":"Z100001"', '"sub":"Z999999"')
        assert forged != body
        conn.execute(
            sa.text("UPDATE audit_event SET body = :b WHERE seq = :s"), {"b": forged, "s": seq}
        )
    try:
        sign_in(page, "Z300001")
        page.locator("#kontroller-knapp").focus()
        with page.expect_response(lambda r: r.url.endswith("/revisor/verifiser")):
            page.keyboard.press("Enter")
        answer = page.locator("#kontroll-svar")
        answer.wait_for()
        assert answer.get_attribute("data-ok") == "nei"
        assert f"Loggen er brutt ved hendelse nr. {seq}" in answer.inner_text()
        assert_accessible(page, "auditor verify broken")
        shoot(page, "revisor-kontroll-brutt", tmp_path)
    finally:
        with site.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE audit_event SET body = :b WHERE seq = :s"), {"b": body, "s": seq}
            )


@pytest.mark.parametrize("path", ["/revisor", "/revisor/policy", "/revisor/innsyn"])
def test_a_non_auditor_is_refused_in_plain_words(
    page: Any, site: Site, tmp_path: Path, path: str
) -> None:
    sign_in(page, "Z100001")
    response = page.goto(path)
    assert response.status == 403
    assert "Ikke tilgang" in page.locator("#problem").inner_text()
    assert "revisor" in page.locator("main").inner_text()
    if path == "/revisor":
        assert_accessible(page, "auditor refused")
        shoot(page, "revisor-ingen-tilgang", tmp_path)
    # Nor can the search be posted past the page.
    status = page.evaluate(
        """async () => {
          const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
          const body = new URLSearchParams({csrf, ident: '01010112345'});
          return (await fetch('/revisor/sok', {method: 'POST', body})).status;
        }"""
    )
    assert status == 403
