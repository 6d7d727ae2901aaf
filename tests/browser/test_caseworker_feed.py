"""The caseworkers' page with the Folkeregister feed, in a real browser: a caseworker related to
the person is refused with the policy's words, the card's "Kilder" box names each register with
the date of its data, a death from the feed shows with its source, and a night without the feed
says in words that the card may be old.

Whom to look up comes from the sample's answer keys (truth/relatives.csv, persons.csv) and what
each card must show from the page's own service over the same store: no card is hard-coded. The
tests run in order on one site (module scope): the last one serves a night without the feed.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from personkort.nightly import run_night
from personkort.policy.engine import Caseworker
from personkort.services import ServiceError
from personkort.services.lookup import CardPage
from tests.browser.conftest import Site, assert_accessible, shoot, sign_in
from tests.conftest import ROOT, SAMPLE, read_csv
from web.rendering import norwegian_date
from web.routes_caseworker import source_line
from web.session import SESSION_COOKIE, SESSION_SECONDS, session_audience

PERSONS = read_csv(SAMPLE / "night1" / "truth" / "persons.csv")
RELATIVES = read_csv(SAMPLE / "night1" / "truth" / "relatives.csv")
RULES = yaml.safe_load((ROOT / "policies" / "default" / "rules.yaml").read_text(encoding="utf-8"))
STATE = Caseworker("Z100001", "stat", "nav-lillestrom", frozenset({"veileder"}))
CODE_OF = {
    "parent": "egen_familie",
    "child": "egen_familie",
    "sibling": "egen_familie",
    "partner": "egen_partner",
    "coparent": "egen_partner",
}
FEED = "folkeregister"


def number_of(person: dict[str, str]) -> str:
    return person["fnr"] or person["dnr"]


@pytest.fixture(scope="module")
def views(site: Site) -> Iterator[Callable[[Caseworker, str], CardPage | None]]:
    """The page's own service in this process over the same store: what a card must show."""
    app = create_app(site.settings.model_copy(update={"lookups_per_minute": 1_000_000}))
    lookup = app.state.web.services.lookup

    def view(worker: Caseworker, ident: str) -> CardPage | None:
        try:
            return lookup.for_page(worker, ident, None)
        except ServiceError:
            return None

    yield view


def sign_in_with_pid(page: Any, site: Site, pid: str) -> None:
    """A state caseworker whose own identity number is ``pid``. The demo users carry no pid
    (web/demo.py), so the session token is minted as the sign-in would mint it, with the same
    audience and lifetime, and set as the session cookie."""
    token = mint(
        site.settings,
        {
            "sub": "Z100009",
            "name": "Pia Pårørende",
            "employer": "stat",
            "office": "nav-lillestrom",
            "roles": ["veileder"],
            "pid": pid,
            "jti": secrets.token_urlsafe(24),
        },
        lifetime_seconds=SESSION_SECONDS,
        audience=session_audience(site.settings),
    )
    page.context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": token,
                "url": site.url,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    page.goto("/")
    assert page.evaluate("document.activeElement.id") == "ident"


def look_up(page: Any, ident: str) -> None:
    """Back to the number field with Alt+F3, type the number, Enter; wait for the answer."""
    page.keyboard.press("Alt+F3")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(ident)
    with page.expect_response(lambda r: r.url.endswith("/oppslag")):
        page.keyboard.press("Enter")
    page.wait_for_selector("#svar h2:focus, #svar [data-fokus]:focus")


def gate_message(code: str) -> str:
    return next(step["message"] for step in RULES["gate"] if step["code"] == code)


def relative_for(code: str, views: Callable[[Caseworker, str], CardPage | None]) -> dict[str, str]:
    """A row of the answer key whose person a state caseworker may otherwise open: the
    refusal is then the relation's, not kode 6's or an unknown person's."""
    by_key = {p["person_key"]: p for p in PERSONS}
    for row in RELATIVES:
        person = by_key.get(row["person_key"])
        if CODE_OF[row["relation"]] != code or person is None or not number_of(person):
            continue
        if views(STATE, number_of(person)) is not None:
            return {**row, "ident": number_of(person)}
    pytest.fail(f"no relative in the sample is refused with {code}")


def feed_card(
    views: Callable[[Caseworker, str], CardPage | None],
    wanted: Callable[[CardPage], bool],
) -> tuple[str, CardPage]:
    for person in PERSONS:
        ident = number_of(person)
        found = views(STATE, ident) if ident else None
        if found is not None and wanted(found):
            return ident, found
    pytest.fail("no card in the sample fits this test")


def registers_of(found: CardPage) -> list[str]:
    return [s["register"] for s in found.view["sources"]]


def with_feed(found: CardPage) -> bool:
    registers = registers_of(found)
    return FEED in registers and len(registers) >= 2


@pytest.mark.parametrize("code", ["egen_familie", "egen_partner"])
def test_a_relative_is_refused_with_the_policys_words(
    page: Any, site: Site, views, code: str
) -> None:
    row = relative_for(code, views)
    sign_in_with_pid(page, site, row["caseworker_pid"])
    look_up(page, row["ident"])
    problem = page.locator("#problem")
    assert problem.get_attribute("data-code") == code
    text = problem.inner_text()
    assert gate_message(code) in text
    assert "Oppslaget er avvist" in text
    assert re.search(r"Sporings-id: [0-9a-f]{32}", text)
    assert page.locator("#kort").count() == 0
    assert_accessible(page, f"refused: {code}")
    shoot(page, f"veileder-avvist-{code.replace('_', '-')}")


def test_the_sources_box_names_each_register_with_the_date_of_its_data(page: Any, views) -> None:
    ident, found = feed_card(views, with_feed)
    sign_in(page, STATE.sub)
    look_up(page, ident)
    items = page.locator("#kildeliste li")
    assert items.count() == len(found.view["sources"])
    names = {"arena": "Arena", "infotrygd": "Infotrygd", FEED: "Folkeregisteret"}
    for i, source in enumerate(found.view["sources"]):
        item = items.nth(i)
        assert item.get_attribute("data-register") == source["register"]
        assert item.get_attribute("data-kan-vaere-gammel") == "nei"
        words = item.inner_text()
        name = names.get(source["register"], "kommunens fagsystem")
        assert words.startswith(f"{name}: data fra {norwegian_date(source['data_from'])}")
        assert "lest i natt" in words
    assert page.locator("#kilder-varsel").count() == 0
    card = page.inner_text("#kort")
    assert "(Folkeregisteret, folkeregister:line:" in card  # a value with the feed as source
    assert "(folkeregister," not in card  # the register is named, never its key
    assert_accessible(page, "card with its sources")
    page.locator("#del-kilder").scroll_into_view_if_needed()
    shoot(page, "veileder-kort-kilder")


def test_a_death_from_the_feed_is_shown_with_its_source(page: Any, views) -> None:
    def feed_death(found: CardPage) -> bool:
        return any(d["source"]["register"] == FEED for d in found.view["identity"]["death_date"])

    ident, found = feed_card(views, feed_death)
    death = next(d for d in found.view["identity"]["death_date"] if d["source"]["register"] == FEED)
    sign_in(page, STATE.sub)
    look_up(page, ident)
    assert f"død {norwegian_date(found.view['identity']['death_date'][0]['value'])}" in (
        page.inner_text("#kort-tittel")
    )
    deaths = page.locator("#del-identitet dt:text-is('Dødsdato') + dd li").all_inner_texts()
    assert (
        f"{norwegian_date(death['value'])} (Folkeregisteret, {death['source']['location']}, "
        f"natt {death['source']['night']})"
    ) in deaths
    assert_accessible(page, "card with a death from the feed")
    shoot(page, "veileder-kort-dodsfall-folkeregisteret")


def drop_without_feed(source: Path, target: Path) -> Path:
    """The sample's night 2 as a drop whose Folkeregister snapshot never came."""
    target.mkdir(parents=True)
    for part in source.iterdir():
        if part.name == FEED:
            continue
        if part.is_dir():
            shutil.copytree(part, target / part.name)
        else:
            shutil.copy2(part, target / part.name)
    return target


def test_a_night_without_the_feed_says_the_card_may_be_old(
    page: Any, site: Site, views, tmp_path: Path
) -> None:
    drop = drop_without_feed(SAMPLE / "night2", tmp_path / "night2-uten-folkeregister")
    outcome = run_night(
        site.engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop)
    )
    assert outcome.status == "published"
    assert outcome.counts["feed"]["status"] == "missing"
    ident, found = feed_card(views, with_feed)
    feed = next(s for s in found.view["sources"] if s["register"] == FEED)
    assert feed["tonight"] == "missing" and feed["may_be_old"]
    sign_in(page, STATE.sub)
    look_up(page, ident)
    warning = page.inner_text("#kilder-varsel")
    assert "Folkeregisteret ble ikke levert i natt: opplysningene kan være gamle" in warning
    assert norwegian_date(feed["data_from"]) in warning
    item = page.locator(f"#kildeliste li[data-register='{FEED}']")
    assert item.get_attribute("data-kan-vaere-gammel") == "ja"
    assert "ikke levert i natt" in item.inner_text()
    assert "Kan være gammelt" in item.inner_text()  # in words, not by the border alone
    for other in page.locator("#kildeliste li:not([data-register='folkeregister'])").all():
        assert other.get_attribute("data-kan-vaere-gammel") == "nei"
    assert_accessible(page, "card from a night without the feed")
    shoot(page, "veileder-kort-folkeregister-mangler")


@pytest.mark.parametrize(
    ("tonight", "words"),
    [
        ("refused", "Folkeregisteret ble avvist i natt: opplysningene kan være gamle"),
        ("missing", "Folkeregisteret ble ikke levert i natt: opplysningene kan være gamle"),
        ("events_unreadable", "Dagens hendelser fra Folkeregisteret kunne ikke leses"),
    ],
)
def test_every_state_of_a_source_that_may_be_old_is_said_in_words(tonight: str, words: str) -> None:
    """The states the sample's nights do not reach in a browser (a refused snapshot, an inbox
    that could not be read) get their own sentence too."""
    state = {"register": FEED, "data_from": "2026-11-20", "tonight": tonight, "may_be_old": True}
    line = source_line(state)
    assert line["warning"] is not None and words in line["warning"]
    assert line["text"].startswith("Folkeregisteret: data fra 20. november 2026, ")
    read = source_line({**state, "tonight": "read", "may_be_old": False})
    assert read["warning"] is None and read["text"].endswith("lest i natt.")
