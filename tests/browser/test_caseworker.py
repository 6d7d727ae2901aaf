"""The caseworkers' page in a real browser, with the keyboard alone: type, Enter, the card.

Which persons to look up is decided from the sample's answer keys (truth/persons.csv) and what
each card is expected to show from the same services the page calls, run in this process over
the same store: the test never hard-codes a card.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from api.app import create_app
from personkort.ident import IdentError, make_ident, parse
from personkort.policy.engine import Caseworker
from personkort.services import ServiceError
from personkort.services.lookup import CardPage
from tests.browser.conftest import Site, assert_accessible, shoot, sign_in
from tests.conftest import ROOT, SAMPLE, read_csv
from web.demo import BY_SUB

PERSONS = read_csv(SAMPLE / "night1" / "truth" / "persons.csv")
RULES = yaml.safe_load((ROOT / "policies" / "default" / "rules.yaml").read_text(encoding="utf-8"))
STATE, MUNICIPAL, KODE6 = "Z100001", "K320501", "Z100006"


def worker(sub: str) -> Caseworker:
    user = BY_SUB[sub]
    return Caseworker(user.sub, user.employer, user.office, frozenset(user.roles))


def number_of(person: dict[str, str]) -> str:
    return person["fnr"] or person["dnr"]


@pytest.fixture(scope="module")
def views(site: Site) -> Iterator[Callable[[str, str], CardPage | None]]:
    """The page's own service, in this process over the same store: what a card must show.
    (Its lookups are audited and rate-limited here, not in the server under test.)"""
    app = create_app(site.settings.model_copy(update={"lookups_per_minute": 1_000_000}))
    lookup = app.state.web.services.lookup

    def view(sub: str, ident: str) -> CardPage | None:
        try:
            return lookup.for_page(worker(sub), ident, None)
        except ServiceError:
            return None

    yield view


def find(
    views: Callable[[str, str], CardPage | None],
    wanted: Callable[[dict[str, str], CardPage | None, CardPage | None], bool],
    skip: set[str] | None = None,
) -> tuple[str, CardPage, CardPage]:
    """The first sample person whose state and municipal views satisfy ``wanted``."""
    for person in PERSONS:
        ident = number_of(person)
        if not ident or (skip and ident in skip):
            continue
        state, municipal = views(STATE, ident), views(MUNICIPAL, ident)
        if state is not None and municipal is not None and wanted(person, state, municipal):
            return ident, state, municipal
    pytest.fail("no person in the sample fits this test")


def look_up(page: Any, ident: str) -> None:
    """Back to the number field with Alt+F3, type the number, Enter; wait for the answer."""
    page.keyboard.press("Alt+F3")
    assert page.evaluate("document.activeElement.id") == "ident"
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(ident)
    with page.expect_response(lambda r: r.url.endswith("/oppslag")):
        page.keyboard.press("Enter")
    page.wait_for_selector("#svar h2:focus, #svar [data-fokus]:focus")


def markers(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#svar [data-tilstand='skjult']", "els => els.map(e => e.dataset.samtykke)"
    )


def grouped(ident: str) -> str:
    return f"{ident[:6]} {ident[6:]}"


def test_type_a_number_press_enter_and_the_card_is_there(page: Any, site: Site, views) -> None:
    ident, state, _ = find(views, lambda p, s, m: bool(s.view["identity"]["names"]))
    sign_in(page, STATE)
    assert page.url == site.url + "/"
    assert page.evaluate("document.activeElement.id") == "ident"  # focus at load
    assert_accessible(page, "empty page")
    shoot(page, "veileder-tom-side")
    page.keyboard.type(f"{ident[:6]}.{ident[6:9]}-{ident[9:]}")  # separators are accepted
    with page.expect_response(lambda r: r.url.endswith("/oppslag")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    page.wait_for_selector("#kort-tittel")
    page.wait_for_selector("#kort-tittel:focus")
    heading = page.inner_text("#kort-tittel")
    assert state.view["identity"]["names"][0]["value"] in heading
    assert page.inner_text("#kunngjoring") == heading.strip()  # announced
    assert page.get_attribute("#kort", "data-kort-id") == state.view["card_id"]
    numbers = page.inner_text(".kort__numre")
    for v in (*state.view["identity"]["idents"], *state.view["identity"]["earlier_idents"]):
        assert grouped(v["value"]) in numbers
    for section in ("Identitet", "Kontakt", "Oppfølging", "Statlige ytelser", "Tiltak"):
        assert page.locator("h3", has_text=section).count() == 1
    for section in ("Kommunale tjenester", "Samtykker", "Kilder"):
        assert page.locator("h3", has_text=section).count() == 1
    assert page.url == site.url + "/"  # the address bar never shows the number
    assert_accessible(page, "card")
    shoot(page, "veileder-kort")


def test_state_and_municipal_caseworkers_see_different_withheld_fields(page: Any, views) -> None:
    # One person whose card hides amounts from the municipality but not from the state, and
    # one whose municipal service the municipality sees and the state does not.
    amounts, _, municipal_a = find(
        views, lambda p, s, m: not s.view["withheld"] and bool(m.view["withheld"])
    )
    service, state_b, _ = find(
        views,
        lambda p, s, m: bool(s.view["withheld"]) and not m.view["withheld"],
        skip={amounts},
    )
    sign_in(page, MUNICIPAL)
    look_up(page, amounts)
    assert len(markers(page)) == len(municipal_a.view["withheld"])
    assert "Skjult:" in page.inner_text("#kort")
    assert_accessible(page, "card with withheld fields")
    shoot(page, "veileder-kort-med-skjulte-felt")
    look_up(page, service)
    assert markers(page) == []

    sign_in(page, STATE)
    look_up(page, amounts)
    assert markers(page) == []
    look_up(page, service)
    assert len(markers(page)) == len(state_b.view["withheld"])
    text = page.inner_text("#kort")
    for w in state_b.view["withheld"]:
        if w["consent"] == "sosial":
            assert "Samtykke til sosiale tjenester åpner feltet." in text


def test_a_registered_consent_opens_the_marked_fields_at_the_next_lookup(page: Any, views) -> None:
    def okonomi_only(p: dict[str, str], s: CardPage, m: CardPage) -> bool:
        scopes = {w["consent"] for w in m.view["withheld"]}
        verified = any(
            v["source"]["register"] in ("arena", "infotrygd") for v in m.view["identity"]["idents"]
        )
        return verified and scopes == {"okonomi"} and not m.view["consents"]

    ident, _, municipal = find(views, okonomi_only)
    before = len(municipal.view["withheld"])
    sign_in(page, MUNICIPAL)
    look_up(page, ident)
    assert markers(page) == ["okonomi"] * before
    # Register with the keyboard: the scope (økonomi is first), the form reference, submit.
    page.focus("#samtykke-omfang")
    assert page.input_value("#samtykke-omfang") == "okonomi"
    page.keyboard.press("Tab")  # the number it is registered on
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "samtykke-skjema"
    page.keyboard.type("NAV 00-01.01 nr 4711")
    with page.expect_response(lambda r: r.url.endswith("/samtykke")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    page.wait_for_selector("#kort-melding")
    assert "Samtykke til økonomi er registrert" in page.inner_text("#kort-melding")
    look_up(page, ident)  # the next lookup
    assert markers(page) == []
    assert "Samtykke registrert: økonomi" in page.inner_text(".merker")
    assert "NAV 00-01.01 nr 4711" in page.inner_text("#del-samtykker")
    shoot(page, "veileder-samtykke-registrert")
    # Withdraw it again, from the card: the fields are withheld again.
    page.focus("#del-samtykker .samtykke__trekk button")
    with page.expect_response(lambda r: r.url.endswith("/samtykke/trekk")):
        page.keyboard.press("Enter")
    page.wait_for_selector("#kort-melding")
    assert "trukket tilbake" in page.inner_text("#kort-melding")
    assert markers(page) == ["okonomi"] * before


def _kode6_person() -> str:
    return next(
        number_of(p)
        for p in PERSONS
        if p["adressebeskyttelse"] == "STRENGT_FORTROLIG" and number_of(p) and p["skjermet"] != "1"
    )


def _gate_message(code: str) -> str:
    return next(step["message"] for step in RULES["gate"] if step["code"] == code)


def test_a_kode6_person_is_denied_with_the_reason(page: Any) -> None:
    sign_in(page, STATE)
    look_up(page, _kode6_person())
    problem = page.locator("#problem")
    assert problem.get_attribute("data-code") == "strengt_fortrolig_adresse"
    assert _gate_message("strengt_fortrolig_adresse") in problem.inner_text()
    assert re.search(r"Sporings-id: [0-9a-f]{32}", problem.inner_text())
    assert page.locator("#kort").count() == 0
    assert_accessible(page, "denied")
    shoot(page, "veileder-avvist")


def test_a_kode6_caseworker_states_a_purpose_then_sees_the_card(page: Any) -> None:
    ident = _kode6_person()
    sign_in(page, KODE6)
    look_up(page, ident)
    page.wait_for_selector("#formal:focus")
    assert RULES["purpose_missing"]["message"] in page.inner_text("#formal-sporsmal")
    assert page.locator("#kort").count() == 0
    assert_accessible(page, "purpose prompt")
    shoot(page, "veileder-formal")
    page.keyboard.type("x")  # not a purpose: asked again, with why
    with page.expect_response(lambda r: r.url.endswith("/oppslag")):
        page.keyboard.press("Enter")
    page.wait_for_selector("#formal-feil")
    page.wait_for_selector("#formal:focus")
    assert page.locator("#kort").count() == 0
    page.keyboard.type("Oppfølging av søknad om arbeidsavklaringspenger")
    with page.expect_response(lambda r: r.url.endswith("/oppslag")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 200
    page.wait_for_selector("#kort-tittel")
    assert "Strengt fortrolig adresse (kode 6)" in page.inner_text(".merker")
    shoot(page, "veileder-kort-kode6")


def test_a_record_in_quarantine_shows_as_source_unavailable(page: Any, views) -> None:
    ident, state, _ = find(views, lambda p, s, m: bool(s.gaps))
    sections = {
        "identity": "#del-identitet",
        "follow_up": "#del-oppfolging",
        "measures": "#del-tiltak",
        "state_benefits": "#del-ytelser",
        "municipal_services": "#del-kommunalt",
    }
    names = {"arena": "Arena", "infotrygd": "Infotrygd"}
    sign_in(page, STATE)
    look_up(page, ident)
    for gap in state.gaps:
        text = page.inner_text(sections[gap.section])
        assert "Kilde utilgjengelig" in text
        assert names.get(gap.register, "kommunens fagsystem") in text
    untouched = set(sections) - {g.section for g in state.gaps} - {"follow_up"}
    for section in untouched:
        assert "Kilde utilgjengelig" not in page.inner_text(sections[section])


def test_history_and_storage_hold_no_identity_number(page: Any, site: Site, views) -> None:
    looked_up = [number_of(p) for p in PERSONS[:40] if number_of(p)][:6]
    sign_in(page, STATE)
    for ident in looked_up:
        look_up(page, ident)
    cdp = page.context.new_cdp_session(page)
    history = cdp.send("Page.getNavigationHistory")
    urls = [e["url"] for e in history["entries"]] + [page.url]
    length = page.evaluate("history.length")
    assert length == len(history["entries"])
    storage = page.evaluate(
        "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    for ident in looked_up:
        for shown in (ident, grouped(ident)):
            assert all(shown not in u for u in urls), urls
            assert shown not in storage
    assert all(not re.search(r"[0-9]{11}", u) for u in urls)
    # A new tab starts at about:blank; then the sign-in and the page, nothing else.
    assert {u.removeprefix(site.url) for u in urls} <= {"about:blank", "/", "/logg-inn"}


def test_a_mistyped_number_is_refused_before_anything_is_sent(page: Any) -> None:
    ident = number_of(PERSONS[5])
    wrong = ident[:9] + str((int(ident[9]) + 1) % 10) + ident[10]
    sign_in(page, STATE)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/oppslag") else None)
    page.keyboard.type(wrong)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ident-feil:not(:empty)")
    assert "Kontrollsifrene stemmer ikke" in page.inner_text("#ident-feil")
    assert page.get_attribute("#ident", "aria-invalid") == "true"
    page.keyboard.press("Control+A")
    page.keyboard.type("1234")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ident-feil:has-text('11')")
    page.wait_for_timeout(200)
    assert sent == []


def _python_problem(raw: str) -> str | None:
    try:
        parse(raw)
    except IdentError as exc:
        return exc.problem.value
    return None


def _numbers(count: int, seed: int = 11) -> list[str]:
    """Valid numbers of every kind, and near misses: one digit changed, wrong lengths, other
    characters, separators of every sort."""
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        born = dt.date(1860, 1, 1) + dt.timedelta(days=rnd.randrange(0, 65_000))
        made = make_ident(
            born, rnd.randrange(0, 1000), dnr=rnd.random() < 0.3, synthetic=rnd.random() < 0.3
        )
        if made is None:
            out.append("".join(rnd.choice("0123456789") for _ in range(11)))
            continue
        out.append(made)
        spot = rnd.randrange(11)
        out.append(
            made[:spot] + str((int(made[spot]) + rnd.randrange(1, 10)) % 10) + made[spot + 1 :]
        )
        sep = rnd.choice([" ", ".", "-", "\u00a0", " - ", "\t", "\u2009", "\u200b", "/", "\ufeff"])
        out.append(made[:6] + sep + made[6:])
        out.append(made[: rnd.randrange(12)])
        out.append(made + rnd.choice(["0", "x", "", "٣"]))
        out.append(f"{made[:2]}{rnd.randrange(30, 100):02d}{made[4:]}")  # odd months (+40 too)
    return out


def test_the_browser_check_is_the_servers_rule(page: Any) -> None:
    sign_in(page, STATE)
    numbers = _numbers(3000)
    browser = page.evaluate("list => list.map(n => window.personkortIdent.problem(n))", numbers)
    python = [_python_problem(n) for n in numbers]
    differ = [(n, b, p) for n, b, p in zip(numbers, browser, python, strict=True) if b != p]
    assert not differ, differ[:10]
    assert python.count(None) > 500  # many valid numbers, of every kind, were compared
    assert len(set(python)) == 8


def test_shortcuts_and_the_help_dialog(page: Any, views) -> None:
    ident, _, _ = find(views, lambda p, s, m: True)
    sign_in(page, STATE)
    page.keyboard.press("?")
    page.wait_for_selector("#hjelp[open]")
    assert_accessible(page, "help dialog")
    shoot(page, "veileder-hurtigtaster")
    page.keyboard.press("Escape")
    page.wait_for_selector("#hjelp:not([open])", state="attached")
    look_up(page, ident)
    assert page.evaluate("document.activeElement.id") == "kort-tittel"
    page.keyboard.press("/")  # from the card back to the field
    assert page.evaluate("document.activeElement.id") == "ident"
    page.focus("#samtykke-skjema")
    page.keyboard.press("/")  # typing in another field: "/" is a character there
    assert page.evaluate("document.activeElement.id") == "samtykke-skjema"
    assert page.input_value("#samtykke-skjema") == "/"
    page.keyboard.press("Alt+F3")  # Alt+F3 comes back from anywhere
    assert page.evaluate("document.activeElement.id") == "ident"


def test_the_page_is_for_caseworkers(page: Any) -> None:
    sign_in(page, "Z200001")  # a steward starts at their own view, not at the card
    assert page.url.endswith("/forvalter")
    page.goto("/")
    assert page.url.endswith("/forvalter")
    assert page.locator("#ident").count() == 0
