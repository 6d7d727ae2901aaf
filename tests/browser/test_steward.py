"""The data stewards' view in a browser, keyboard only: the nights with their chart, a night's
report and quarantine, the review queue, "later", a refusal when another steward decided the
pair first, and a pair settled with the keyboard that the next night honours.

The tests run in order on one site (module scope): the first pair is deferred and then
decided by someone else, the second settled by the steward, then night 2 runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from personkort.audit import AuditLog
from personkort.policy.engine import Caseworker
from personkort.services.stewardship import ReviewPair, StewardService
from tests.browser.conftest import Site, assert_accessible, shoot, sign_in
from tests.conftest import SAMPLE, read_csv

OTHER = Caseworker("Z200002", "stat", "nav-forvaltning", frozenset({"forvalter"}))
STEWARD = Caseworker("Z200001", "stat", "nav-forvaltning", frozenset({"forvalter"}))


@pytest.fixture(scope="module")
def stewards(site: Site) -> Iterator[StewardService]:
    """The stewards' service over the site's store: another steward's hands, and a way to
    read what the pages did."""
    audit = AuditLog.from_settings(site.engine, site.settings.data_dir)
    yield StewardService(site.engine, audit, lambda: dt.datetime.now(dt.UTC))
    audit.close()


def same_person(pair: ReviewPair) -> bool:
    """What the sample's answer key says about a pair."""
    rows = read_csv(SAMPLE / "night1" / "truth" / "links.csv")
    person = {f"{r['register']}:{r['source_key']}": r["person_key"] for r in rows}
    return person[pair.record_key] == person[pair.candidate_key]


def press_link(page: Any, href: str) -> None:
    """Follow a link with the keyboard: focus it, Enter."""
    page.locator(f'a[href="{href}"]').first.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")


def choose_and_confirm(page: Any, outcome: str, comment: str) -> None:
    """On a pair's page: the choice (Space on its radio), the comment typed, Enter on
    "Gå videre" to the confirmation page."""
    page.locator(f"#utfall-{outcome}").focus()
    page.keyboard.press("Space")
    page.locator("#kommentar").focus()
    page.keyboard.type(comment)
    page.keyboard.press("Tab")  # to the submit button
    assert page.evaluate("document.activeElement.type") == "submit"
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_a_caseworker_is_refused_the_stewards_view(page: Any, site: Site) -> None:
    sign_in(page, "Z100001")
    response = page.goto("/forvalter")
    assert response.status == 403
    text = page.inner_text("#problem")
    assert "dataforvaltere" in text and "rollen" in text
    assert page.locator('a[href="/forvalter"]').count() == 0  # not in the caseworker's menu
    assert_accessible(page, "steward view refused to a caseworker")
    shoot(page, "forvalter-avvist-for-veileder")


def test_the_nights_with_chart_report_and_quarantine(page: Any, site: Site) -> None:
    sign_in(page, "Z200001")
    assert page.url.endswith("/forvalter")
    rows = page.locator("table.netter tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "Natt 1" in row and "Publisert" in row and "Alle bestått" in row
    airflow = page.locator("table.netter a[rel=noopener]").first.get_attribute("href")
    assert airflow == f"{site.settings.airflow_url.rstrip('/')}/dags/personkort_nightly/runs"
    page.wait_for_selector("#graf canvas")
    # The chart's text alternative holds the same numbers as the night's counts.
    night = site_night(site)
    cells = page.locator("#graf-tall tbody tr").first.locator("td")
    assert cells.nth(0).inner_text() == str(night["counts"]["cards"])
    assert cells.nth(5).inner_text() == str(night["counts"]["review_queue"])
    assert_accessible(page, "steward overview")
    shoot(page, "forvalter-netter")

    press_link(page, "/forvalter/natt/1")
    assert page.url.endswith("/forvalter/natt/1")
    bad = read_csv(SAMPLE / "night1" / "truth" / "bad.csv")
    quarantine = page.inner_text("table.karantene")
    for b in bad:
        assert b["location"] in quarantine
    sources = page.inner_text("#kilder-tittel >> xpath=..")
    assert "arena:PERSON" in sources
    assert "Alle bestått" in page.inner_text("main")
    assert_accessible(page, "a night with its report and quarantine")
    shoot(page, "forvalter-natt")


def site_night(site: Site) -> dict[str, Any]:
    from personkort.store import queries

    return queries.nights(site.engine)[-1]


def test_later_and_a_refusal_when_another_steward_decided_first(
    page: Any, site: Site, stewards: StewardService
) -> None:
    queue = stewards.queue(STEWARD)
    pair = next(p for p in queue if not same_person(p))
    sign_in(page, "Z200001")
    press_link(page, "/forvalter/vurderinger")
    assert "gjelder fra neste natt" in page.inner_text("main")
    assert_accessible(page, "review queue")
    shoot(page, "forvalter-vurderingsko")

    # "Later", with a comment: the pair stays in the queue, marked.
    press_link(page, f"/forvalter/vurderinger/{pair.id}")
    choose_and_confirm(page, "later", "Venter på svar fra kommunen")
    assert "utsette" in page.inner_text("#bekreft-tekst")
    page.locator("#bekreft").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Paret er utsatt" in page.inner_text("h1")
    press_link(page, "/forvalter/vurderinger")
    item = page.inner_text(f"#par-{pair.id}")
    assert "Utsatt" in item and "Venter på svar fra kommunen" in item
    shoot(page, "forvalter-vurderingsko-utsatt")

    # Not the same: the confirmation, then another steward decides before Bekreft.
    press_link(page, f"/forvalter/vurderinger/{pair.id}")
    choose_and_confirm(page, "not_same", "Ulike fødselsdatoer i folkeregisteret")
    assert "ikke er samme person" in page.inner_text("#bekreft-tekst")
    assert_accessible(page, "confirmation step")
    shoot(page, "forvalter-bekreft")
    stewards.decide_review(OTHER, pair.id, "not_same", "Sjekket mot folkeregisteret", "none")
    page.locator("#bekreft").focus()
    with page.expect_navigation() as nav:
        page.keyboard.press("Enter")
    assert nav.value.status == 409
    refusal = page.inner_text("#problem")
    assert "Z200002" in refusal and "ikke lagret" in refusal
    assert_accessible(page, "refused: another steward decided first")
    shoot(page, "forvalter-avvist-allerede-avgjort")
    ruling = next(p for p in stewards.queue(STEWARD) if p.id == pair.id).ruling
    assert ruling is not None and ruling.steward == "Z200002"  # the first ruling stands


def test_a_steward_settles_a_pair_and_the_next_night_honours_it(
    page: Any, site: Site, stewards: StewardService
) -> None:
    pair = next(p for p in stewards.queue(STEWARD) if p.state == "open")
    decide_same = same_person(pair)
    outcome = "same" if decide_same else "not_same"
    sign_in(page, "Z200001")
    press_link(page, "/forvalter/vurderinger")
    press_link(page, f"/forvalter/vurderinger/{pair.id}")
    table = page.inner_text("table.side-om-side")
    shown = stewards.pair(STEWARD, pair.id)
    assert shown.a is not None and shown.a.surname in table
    for f in shown.fields:
        assert f.field in table
    assert {"Like", "Ulike", "Mangler"} & set(table.split())
    assert page.locator("ul.bevis li").count() == len(pair.evidence)
    assert_accessible(page, "a pair side by side")
    shoot(page, "forvalter-par")

    # No comment: refused in plain words, nothing stored.
    page.locator(f"#utfall-{outcome}").focus()
    page.keyboard.press("Space")
    page.locator("#kommentar").focus()
    page.keyboard.press("Tab")
    with page.expect_navigation() as nav:
        page.keyboard.press("Enter")
    assert nav.value.status == 422
    assert "Skriv en kommentar" in page.inner_text("#feil")
    assert_accessible(page, "a pair with a missing comment")
    shoot(page, "forvalter-par-mangler-kommentar")

    page.locator("#kommentar").focus()
    page.keyboard.type("Samme navn, adresse og kommune; sjekket mot Arena")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.locator("#bekreft").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Avgjørelsen er lagret" in page.inner_text("h1")
    assert "neste natt" in page.inner_text("main")
    assert_accessible(page, "decision stored")
    shoot(page, "forvalter-kvittering")

    press_link(page, "/forvalter/vurderinger")
    assert "Avgjort" in page.inner_text(f"#par-{pair.id}")
    ruling = stewards.pair(STEWARD, pair.id).ruling
    assert ruling is not None and ruling.steward == "Z200001" and ruling.same is decide_same
    row = page.locator(f'tr[data-avgjorelse="{ruling.id}"]')
    assert row.get_attribute("data-status") == "pending"
    assert "Venter på neste natt" in row.inner_text()

    site.run_night("night2")
    page.reload()
    row = page.locator(f'tr[data-avgjorelse="{ruling.id}"]')
    assert row.get_attribute("data-status") == "honoured"
    assert "Gjennomført" in row.inner_text()
    status = next(r for r in stewards.rulings(STEWARD) if r.ruling.id == ruling.id)
    assert status.card_a is not None and status.card_b is not None
    assert (status.card_a == status.card_b) is decide_same
    assert status.card_a in row.inner_text()
    queued = {frozenset((p.record_key, p.candidate_key)) for p in stewards.queue(STEWARD)}
    assert frozenset((pair.record_key, pair.candidate_key)) not in queued
    assert_accessible(page, "rulings after the next night")
    shoot(page, "forvalter-vurderingsko-neste-natt")

    # The overview now has both nights, newest first, and the chart a line between them.
    press_link(page, "/forvalter")
    assert page.locator("table.netter tbody tr").count() == 2
    assert "Natt 2" in page.locator("table.netter tbody tr").first.inner_text()
    assert page.locator("#graf-tall tbody tr").count() == 2
    page.wait_for_selector("#graf canvas")
    assert_accessible(page, "steward overview after two nights")
    shoot(page, "forvalter-netter-to-netter")


def feed_drop(target: Any, cut_to: float | None) -> Any:
    """The sample's night 2 as a new drop: without its Folkeregister snapshot (``cut_to`` None)
    or with the snapshot cut short to that share of its lines."""
    import shutil

    target.mkdir(parents=True)
    for part in (SAMPLE / "night2").iterdir():
        if part.name != "folkeregister":
            if part.is_dir():
                shutil.copytree(part, target / part.name)
            else:
                shutil.copy2(part, target / part.name)
        elif cut_to is not None:
            (target / part.name).mkdir()
            for snapshot in part.iterdir():
                lines = snapshot.read_text(encoding="utf-8").splitlines(keepends=True)
                kept = "".join(lines[: int(len(lines) * cut_to)])
                (target / part.name / snapshot.name).write_text(kept, encoding="utf-8")
    return target


def run_drop(site: Site, drop: Any) -> dict[str, Any]:
    from adapters import read_drop
    from adapters.drop import fingerprint
    from personkort.nightly import run_night

    outcome = run_night(
        site.engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop)
    )
    assert outcome.status == "published"  # a missing or refused feed never stops the night
    return outcome.counts["feed"]


def test_each_night_shows_the_folkeregister_feed(page: Any, site: Site, tmp_path: Any) -> None:
    import re

    from personkort.store import queries

    read = {n["id"]: n["counts"]["feed"] for n in queries.nights(site.engine)}
    assert read and all(f["status"] == "read" for f in read.values())
    refused = run_drop(site, feed_drop(tmp_path / "kuttet", cut_to=0.5))
    missing = run_drop(site, feed_drop(tmp_path / "uten", cut_to=None))
    assert refused["status"] == "refused" and missing["status"] == "missing"
    nights = {n["id"]: n for n in queries.nights(site.engine)}
    refused_id, missing_id = sorted(nights)[-2:]

    sign_in(page, "Z200001")
    for night_id, feed in read.items():
        cell = page.locator(f"table.netter tbody tr:has(a[href='/forvalter/natt/{night_id}'])")
        words = cell.locator(".folkeregister").inner_text()
        assert words.startswith("Lest")
        assert f"{feed['persons']} personer: {feed['persons_new']} nye, " in words
        assert f"{feed['persons_changed']} endret, {feed['persons_removed']} fjernet" in words
    row = page.locator(f"table.netter tbody tr:has(a[href='/forvalter/natt/{missing_id}'])")
    assert row.locator(".folkeregister").get_attribute("data-folkeregister") == "missing"
    assert "Ikke levert" in row.inner_text()
    row = page.locator(f"table.netter tbody tr:has(a[href='/forvalter/natt/{refused_id}'])")
    assert row.locator(".folkeregister").get_attribute("data-folkeregister") == "refused"
    before, now = re.findall(r"\d+", refused["reason"])
    assert f"{before} personer i uttrekket, mot {now} i det forrige" in row.inner_text()
    assert_accessible(page, "steward overview with the feed's nights")
    shoot(page, "forvalter-netter-folkeregisteret")

    press_link(page, f"/forvalter/natt/{refused_id}")
    facts = page.inner_text("#folkeregister-tall")
    assert "Avvist" in facts and refused["file"] in facts
    assert f"{before} personer i uttrekket" in facts
    assert_accessible(page, "a night whose feed was refused")
    shoot(page, "forvalter-natt-folkeregister-avvist")
    page.goto(f"/forvalter/natt/{missing_id}")
    assert "Ikke levert" in page.inner_text("#folkeregister-tall")
    first = min(read)
    page.goto(f"/forvalter/natt/{first}")
    facts = page.inner_text("#folkeregister-tall")
    assert "Lest" in facts and read[first]["file"] in facts
    assert f"{read[first]['persons']}" in facts
    assert_accessible(page, "a night whose feed was read")
