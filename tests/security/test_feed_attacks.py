"""Attacks on the Folkeregister feed, over real HTTP on SQLite and PostgreSQL: a hostile
insider, a careless client, a database administrator, a failing store and garbage snapshots.

Each test asserts the safe behaviour. Nine of them found holes when they were written (an
older or future-dated snapshot taking over, a raise under the feed's other number or a number
added today, a relation held by the caseworker's own record or under their new number, an
event lumping two people, a cancellation of another person's raise, the role checked after the
body was parsed); all nine are fixed (docs/folkeregister.md, "Attacked").
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.settings import Settings
from personkort.ident import control_digits
from personkort.nightly import run_night
from personkort.store import open_engine
from personkort.store.feed import snapshot_in_force
from personkort.store.nights import published_night
from personkort.store.served import ServedCards
from pipeline.inbox import read_inbox
from tests.api_server import serve
from tests.conftest import read_csv
from tests.test_feed_api import FEED_TOKEN, Client, night

PRIVILEGED = ["veileder", "kode6", "kode7", "skjermet"]
TODAY = "2026-11-20T14:00:00+01:00"  # after the night1 snapshot's as_of
# Plain people of the sample (no marker, not skjermet, alive, no relatives in the answer keys).
MARIANNE = ("11867913868", "51867923490")  # FNR in use, old D-nummer; Arena and Infotrygd
WENCHE = "05917631893"  # every register
JOHN = "29816627956"
# Infotrygd knows Halvor Bakken by his D-nummer only; the feed knows his new FNR too.
HALVOR_DNR, HALVOR_FNR = "45875937131", "05875943946"
# A caseworker and their relative (truth/relatives.csv): 17827430978 is P00000006's parent.
PARENT_PID, CHILD_OF_PARENT = "17827430978", "10879813692"
FORTROLIG_PERSON = "P00000026"  # the snapshot marks FORTROLIG (truth/feed_protection.csv)


def number(ddmmyy: str, start: int = 100) -> str:
    """A valid fødselsnummer born ``ddmmyy`` that the sample does not use."""
    for individual in range(start, 500):
        first9 = f"{ddmmyy}{individual:03d}"
        digits = control_digits(first9)
        if digits is not None:
            return f"{first9}{digits[0]}{digits[1]}"
    raise AssertionError("no valid number")


def event(
    event_id: str,
    idents: list[str],
    kind: str = "ADRESSEBESKYTTELSE_V1",
    change: str = "OPPRETTET",
    *,
    replaces: str | None = None,
    created: str = TODAY,
    **payload: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hendelseId": event_id,
        "opprettet": created,
        "personidenter": idents,
        "opplysningstype": kind,
        "endringstype": change,
        "tidligereHendelseId": replaces,
    }
    if kind == "ADRESSEBESKYTTELSE_V1" and "adressebeskyttelse" not in payload:
        payload["adressebeskyttelse"] = {"gradering": "STRENGT_FORTROLIG"}
    return {**body, **payload}


def raw_post(client: Client, path: str, content: bytes, **claims: object) -> httpx.Response:
    return httpx.post(
        f"{client.url}{path}",
        content=content,
        headers={
            "Authorization": f"Bearer {client.token(**claims)}",
            "Content-Type": "application/json",
        },
        timeout=60,
    )


def count(engine: sa.Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(sql), params) or 0)


def stored_events(engine: sa.Engine) -> int:
    return count(engine, "SELECT count(*) FROM feed_event")


def sample_number(sample: Path, person_key: str) -> str:
    rows = read_csv(sample / "night1" / "truth" / "persons.csv")
    row = next(r for r in rows if r["person_key"] == person_key)
    return row["fnr"] or row["dnr"]


@pytest.fixture(autouse=True)
def _small_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few PostgreSQL connections per engine: the server is shared with other suites."""
    monkeypatch.setenv("PERSONKORT_POOL_SIZE", "4")


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """The store, disposed after the test: PostgreSQL's connections are shared with others."""
    store = open_engine(store_url)
    try:
        yield store
    finally:
        store.dispose()


@pytest.fixture
def served(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path
) -> Iterator[tuple[Client, sa.Engine]]:
    """night1 published, the API served with the card cache on (the default)."""
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    night(engine, sample / "night1")
    with serve(create_app(settings)) as url:
        yield Client(url, settings), engine


# -- who may post, who may read ------------------------------------------------------------


def test_a_caseworker_posting_events_is_refused_audited_and_nothing_stored(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    response = client.send_events([event("evil-1", [WENCHE])], roles=PRIVILEGED, office="nav-oslo")
    assert response.status_code == 403
    assert response.json()["code"] == "mangler_rolle"
    assert stored_events(engine) == 0
    assert count(engine, "SELECT count(*) FROM feed_event_quarantine") == 0
    denied = "SELECT count(*) FROM audit_event WHERE kind = 'feed_events' AND body LIKE '%deny%'"
    assert count(engine, denied) == 1
    assert client.lookup(WENCHE).status_code == 200  # no kode 6 was raised


def test_the_role_is_checked_before_a_caseworkers_batch_is_parsed(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    body = b"[" + b",".join([b"{}"] * 10_001) + b"]"  # 30 KB: under the caseworkers' limit
    response = raw_post(client, "/api/v1/folkeregister/hendelser", body)
    denied = "SELECT count(*) FROM audit_event WHERE kind = 'feed_events' AND body LIKE '%deny%'"
    assert (response.status_code, count(engine, denied)) == (403, 1)


def test_a_caseworker_gets_no_larger_body_limit(served: tuple[Client, sa.Engine]) -> None:
    client, engine = served
    one = json.dumps(event("big-0", [WENCHE])).encode()
    body = b"[" + b",".join([one] * (70_000 // len(one) + 1)) + b"]"  # over 64 KiB
    response = raw_post(client, "/api/v1/folkeregister/hendelser", body)
    assert response.status_code == 413
    assert stored_events(engine) == 0


def test_a_feed_token_opens_no_card_and_no_steward_or_audit_endpoint(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    feed = {**FEED_TOKEN}
    assert client.lookup(WENCHE, **feed).status_code == 403
    headers = {"Authorization": f"Bearer {client.token(**feed)}"}
    for path in (
        "/api/v1/steward/nights",
        "/api/v1/steward/reviews",
        "/api/v1/audit/verify",
        "/api/v1/audit/policies",
    ):
        response = httpx.get(f"{client.url}{path}", headers=headers, timeout=30)
        assert response.status_code == 403, (path, response.text)
    for path, body in (
        ("/api/v1/audit/events", {}),
        ("/api/v1/audit/access-report", {"ident": WENCHE}),
        ("/api/v1/consents", {"ident": WENCHE, "scope": "okonomi"}),
    ):
        response = httpx.post(f"{client.url}{path}", json=body, headers=headers, timeout=30)
        assert response.status_code in (403, 422), (path, response.text)
        assert WENCHE not in response.text and "Wenche" not in response.text
    # The lookup refusal is audited (no card was read for the feed's token).
    assert count(engine, "SELECT count(*) FROM audit_event WHERE kind = 'lookup'") >= 1


# -- garbage bodies ---------------------------------------------------------------------------


def test_a_body_over_four_mib_is_413_and_nothing_is_stored(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    junk = b'["' + b"x" * (4 * 1024 * 1024) + b'"]'
    response = raw_post(client, "/api/v1/folkeregister/hendelser", junk, **FEED_TOKEN)
    assert response.status_code == 413
    assert stored_events(engine) == 0
    assert count(engine, "SELECT count(*) FROM feed_event_quarantine") == 0


def test_deeply_nested_json_is_400_not_a_crash(served: tuple[Client, sa.Engine]) -> None:
    client, engine = served
    for body in (
        b"[" * 200_000 + b"]" * 200_000,
        b"[" + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]",
    ):
        response = raw_post(client, "/api/v1/folkeregister/hendelser", body, **FEED_TOKEN)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:  # read, but only as one unreadable item
            assert response.json()["stored"] == 0
    # Nested only a little, inside an event: quarantined, the rest stored.
    nested: Any = 1
    for _ in range(500):
        nested = {"a": nested}
    bad = {**event("nest-1", [WENCHE]), "adressebeskyttelse": nested}
    response = client.send_events([bad, event("nest-2", [JOHN])])
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert (receipt["stored"], receipt["quarantined"]) == (1, 1)
    assert stored_events(engine) == 1


def test_ten_thousand_and_one_events_are_refused_whole(served: tuple[Client, sa.Engine]) -> None:
    client, engine = served
    events = [event(f"many-{i}", [WENCHE]) for i in range(10_001)]
    response = client.send_events(events)
    assert response.status_code == 413
    assert response.json()["code"] == "for_mange_hendelser"
    assert stored_events(engine) == 0
    assert client.lookup(WENCHE).status_code == 200  # none of them counted


def test_huge_strings_and_bad_numbers_are_quarantined_with_the_rest_stored(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    bad_control = WENCHE[:-1] + str((int(WENCHE[-1]) + 1) % 10)
    items: list[Any] = [
        event("h" * 100_000, [WENCHE]),  # a hendelseId of 100 kB
        event("ok-1", [JOHN]),
        event("bad-number", [bad_control]),
        event("bad-number-2", ["1234567890"]),
        event("bad-number-3", ["０５９１７６３１８９３"]),  # full-width digits
        event(
            "bad-related",
            [JOHN],
            "FORELDERBARNRELASJON_V1",
            forelderBarnRelasjon={
                "relatertPersonsIdent": bad_control,
                "relatertPersonsRolle": "BARN",
            },
        ),
        event("bad-grad", [WENCHE], adressebeskyttelse={"gradering": "x" * 10_000}),
        event("bad-stamp", [WENCHE], created="2026-13-45T99:00:00+01:00"),
        {**event("no-ids", []), "personidenter": []},
        event("too-many", [number("010190", 100 + i) for i in range(0, 400, 7)][:51]),
        event("ok-2", [MARIANNE[0]], "DOEDSFALL_V1", doedsfall={"doedsdato": "2026-11-19"}),
    ]
    response = client.send_events(items)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["received"] == len(items)
    assert receipt["stored"] == 2 and receipt["quarantined"] == len(items) - 2
    assert receipt["received"] == receipt["stored"] + receipt["duplicates"] + receipt["quarantined"]
    with engine.connect() as conn:
        ids = set(conn.scalars(sa.text("SELECT event_id FROM feed_event")))
        raws = conn.execute(
            sa.text("SELECT location, reason, raw FROM feed_event_quarantine")
        ).all()
    assert ids == {"ok-1", "ok-2"}
    assert all(r.reason for r in raws)
    assert all(len(r.reason) < 1000 for r in raws)  # the reason does not echo 100 kB back
    assert all(WENCHE not in str(r.raw) for r in raws)  # sealed
    assert client.lookup(WENCHE).status_code == 200  # nothing quarantined raised her


def test_an_id_collision_keeps_the_first_and_reports_the_second_as_a_duplicate(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    first = event("same-id", [WENCHE], "DOEDSFALL_V1", doedsfall={"doedsdato": "2026-11-19"})
    second = event("same-id", [JOHN])  # another person's kode 6, under the same id
    receipt = client.send_events([first, second]).json()
    assert (receipt["stored"], receipt["duplicates"]) == (1, 1)
    again = client.send_events([second]).json()
    assert (again["stored"], again["duplicates"]) == (0, 1)
    with engine.connect() as conn:
        kinds = list(conn.scalars(sa.text("SELECT kind FROM feed_event")))
    assert kinds == ["DOEDSFALL_V1"]
    assert client.lookup(JOHN).status_code == 200  # the second never counted (the sender's word)


# -- cancellations, corrections, merges -----------------------------------------------------


def test_a_cancellation_naming_another_persons_raise_cancels_nothing(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    assert client.send_events([event("raise-w", [WENCHE])]).json()["stored"] == 1
    assert client.lookup(WENCHE).status_code == 403
    # John's cancellation, and a correction, both naming Wenche's raise.
    cancel = event("cancel-j", [JOHN], change="ANNULLERT", replaces="raise-w")
    correct = event(
        "correct-j",
        [JOHN],
        change="KORRIGERT",
        replaces="raise-w",
        adressebeskyttelse={"gradering": "UGRADERT"},
    )
    assert client.send_events([cancel, correct]).json()["stored"] == 2
    response = client.lookup(WENCHE)
    assert response.status_code == 403 and response.json()["code"] == "strengt_fortrolig_adresse"


def test_cancelling_another_persons_raise_does_not_raise_the_canceller(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    assert client.send_events([event("raise-w", [WENCHE])]).json()["stored"] == 1
    cancel = event("cancel-j", [JOHN], change="ANNULLERT", replaces="raise-w")
    assert client.send_events([cancel]).json()["stored"] == 1
    assert client.lookup(JOHN).status_code == 200


def test_no_day_event_lowers_the_snapshots_marker(
    served: tuple[Client, sa.Engine], sample: Path
) -> None:
    client, _ = served
    person = sample_number(sample, FORTROLIG_PERSON)

    def fortrolig() -> bool:
        response = client.lookup(person)
        assert response.status_code == 200, response.text
        return "fortrolig_adresse" in {w["reason"] for w in response.json()["withheld"]}

    assert fortrolig()
    ugradert = {"adressebeskyttelse": {"gradering": "UGRADERT"}}
    events = [
        event("low-1", [person], change="OPPHOERT", **ugradert),
        event("low-2", [person], **ugradert),
        event("low-3", [person], change="KORRIGERT", replaces="never-seen", **ugradert),
        event("low-4", [person], change="ANNULLERT", replaces="never-seen"),
        event("low-5", [person], created="2099-01-01T00:00:00+01:00", **ugradert),
    ]
    assert client.send_events(events).json()["stored"] == len(events)
    assert fortrolig()
    # A raise to kode 6, then a correction down to UGRADERT: back to the night's FORTROLIG.
    client.send_events([event("up", [person])])
    assert client.lookup(person).status_code == 403
    client.send_events([event("down", [person], change="KORRIGERT", replaces="up", **ugradert)])
    assert fortrolig()


def test_a_future_dated_raise_counts(served: tuple[Client, sa.Engine]) -> None:
    client, _ = served
    client.send_events([event("future", [WENCHE], created="2099-12-31T23:59:00+01:00")])
    assert client.lookup(WENCHE).status_code == 403


def test_an_event_lumping_two_people_shows_no_strangers_number_or_death(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    lumped = event("lump-1", [WENCHE, JOHN], "DOEDSFALL_V1", doedsfall={"doedsdato": "2026-11-19"})
    assert client.send_events([lumped]).json()["stored"] == 1
    card = client.lookup(WENCHE, roles=PRIVILEGED).json()
    text = json.dumps(card)
    deaths = [d["value"] for d in card["identity"]["death_date"]]
    # Wenche and John are two snapshot persons: the event cannot be about both.
    assert JOHN not in text and deaths == []


def test_fifty_numbers_in_one_event_raise_but_do_not_merge_cards(
    served: tuple[Client, sa.Engine],
) -> None:
    """Raising is always safe, so a kode 6 naming 50 numbers raises each; the cards stay
    apart (a lookup by one number never answers another person's card)."""
    client, _ = served
    strangers = [number("020290", 100 + 3 * i) for i in range(47)]
    idents = [WENCHE, JOHN, MARIANNE[0], *strangers][:50]
    assert len(set(idents)) == 50
    assert client.send_events([event("fifty", idents)]).json()["stored"] == 1
    for n in (WENCHE, JOHN, MARIANNE[0]):
        assert client.lookup(n).status_code == 403
    for n in strangers[:5]:
        response = client.lookup(n, roles=PRIVILEGED, purpose="x")
        # A number only this event knows finds a card of one of the named persons.
        if response.status_code == 200:
            assert len({i["value"] for i in response.json()["identity"]["idents"]}) < 50


def test_an_event_for_a_number_no_card_has_finds_nothing(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    nobody = number("030390")
    receipt = client.send_events(
        [event("nobody", [nobody], "DOEDSFALL_V1", doedsfall={"doedsdato": "2026-11-19"})]
    ).json()
    assert receipt["stored"] == 1
    response = client.lookup(nobody, roles=PRIVILEGED)
    assert response.status_code == 404
    assert nobody not in response.text


# -- protection through numbers only the feed knows -----------------------------------------


def test_a_raise_on_the_feeds_other_number_counts_on_a_warm_card(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    assert client.lookup(HALVOR_DNR).status_code == 200  # cached in this process
    assert client.send_events([event("halvor-6", [HALVOR_FNR])]).json()["stored"] == 1
    response = client.lookup(HALVOR_DNR)
    assert response.status_code == 403, response.text


def test_a_raise_on_the_feeds_other_number_counts_on_a_cold_card(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path
) -> None:
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"), card_cache_size=0)
    night(engine, sample / "night1")
    with serve(create_app(settings)) as url:
        client = Client(url, settings)
        client.send_events([event("halvor-6", [HALVOR_FNR])])
        assert client.lookup(HALVOR_DNR).status_code == 403
        assert client.lookup(HALVOR_FNR).status_code == 403


def test_a_raise_on_a_number_added_today_counts(served: tuple[Client, sa.Engine]) -> None:
    client, _ = served
    new = number("111179", 300)
    added = event(
        "marianne-new",
        list(MARIANNE),
        "FOLKEREGISTERIDENTIFIKATOR_V1",
        folkeregisteridentifikator={
            "identifikasjonsnummer": new,
            "type": "FNR",
            "status": "I_BRUK",
        },
    )
    assert client.send_events([added]).json()["stored"] == 1
    assert client.send_events([event("marianne-6", [new])]).json()["stored"] == 1
    assert client.lookup(new).status_code == 403
    assert client.lookup(MARIANNE[0]).status_code == 403


def test_a_raised_card_is_refused_by_card_id_and_the_page(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    card = client.lookup(WENCHE, roles=PRIVILEGED).json()
    card_id = card["card_id"]
    client.send_events([event("raise-page", [WENCHE])])
    headers = {"Authorization": f"Bearer {client.token()}"}
    response = httpx.get(f"{client.url}/api/v1/personkort/{card_id}", headers=headers, timeout=30)
    assert response.status_code == 403, response.text
    assert "Wenche" not in response.text
    opened = httpx.post(
        f"{client.url}/api/v1/personkort/{card_id}/open",
        json={"purpose": "oppfølging av saken"},
        headers=headers,
        timeout=30,
    )
    assert opened.status_code == 403 and "Wenche" not in opened.text
    report = httpx.post(
        f"{client.url}/api/v1/audit/access-report",
        json={"ident": WENCHE},
        headers=headers,
        timeout=30,
    )
    assert report.status_code in (403, 422) and "Wenche" not in report.text
    for path, body in (
        ("/api/v1/consents/search", {"ident": WENCHE, "purpose": "oppfølging av saken"}),
        (
            "/api/v1/consents",
            {
                "ident": WENCHE,
                "scope": "okonomi",
                "valid_from": "2026-11-20",
                "valid_to": "2027-01-20",
                "form_reference": "skjema-1",
            },
        ),
    ):
        response = httpx.post(f"{client.url}{path}", json=body, headers=headers, timeout=30)
        assert response.status_code in (403, 404), (path, response.text)
        assert "Wenche" not in response.text
    # The caseworkers' page, signed in as a state caseworker without kode 6.
    browser = httpx.Client(base_url=client.url, timeout=30)
    nonce = re.search(r'name="nonce" value="([^"]+)"', browser.get("/logg-inn").text)
    assert nonce
    done = browser.post("/logg-inn", data={"bruker": "Z100001", "nonce": nonce.group(1)})
    assert done.status_code == 303, done.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get(done.headers["location"]).text)
    assert csrf
    page = browser.post(
        "/oppslag",
        data={"ident": WENCHE, "formal": "oppfølging av saken", "csrf": csrf.group(1)},
    )
    assert page.status_code in (200, 403), page.text
    assert "arnesen" not in page.text.lower() and "wenche" not in page.text.lower()
    assert "1976" not in page.text  # not even her birth date
    control = browser.post(
        "/oppslag",
        data={"ident": JOHN, "formal": "oppfølging av saken", "csrf": csrf.group(1)},
    )
    assert "berg-hansen" in control.text.lower()  # the page does show an unraised card


# -- the relatives gate ---------------------------------------------------------------------


def _refused_once_related(
    client: Client, card: str, caseworker: str, holder: str, related: str, role: str, tag: str
) -> None:
    """``caseworker`` opens ``card``; one of today's events on ``holder``'s record (``related``
    is their ``role``) makes them family; the same lookup is then refused."""
    assert client.lookup(card, pid=caseworker).status_code == 200
    relation = event(
        f"rel-{tag}",
        [holder],
        "FORELDERBARNRELASJON_V1",
        forelderBarnRelasjon={"relatertPersonsIdent": related, "relatertPersonsRolle": role},
    )
    assert client.send_events([relation]).json()["stored"] == 1
    response = client.lookup(card, pid=caseworker)
    assert response.status_code == 403 and response.json()["code"] == "egen_familie"


def test_a_relation_event_held_by_the_caseworker_refuses_them(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    # Wenche is not related to John in the snapshot; today her record names him as her child.
    _refused_once_related(client, JOHN, WENCHE, WENCHE, JOHN, "BARN", "rev")


def test_a_sibling_made_today_through_the_caseworkers_parent_is_refused(
    served: tuple[Client, sa.Engine],
) -> None:
    """The relatives gate asks the caseworker's side (``kin_of``): an event held by a third
    person naming the caseworker's parent as theirs makes that person a sibling at once."""
    client, _ = served
    # PARENT_PID is CHILD_OF_PARENT's parent in the snapshot; today Wenche's record names them.
    _refused_once_related(client, WENCHE, CHILD_OF_PARENT, WENCHE, PARENT_PID, "MOR", "sibling")
    assert client.lookup(WENCHE, pid=JOHN).status_code == 200  # nobody else is refused


def test_a_parent_registered_today_on_the_caseworkers_record_makes_a_sibling(
    served: tuple[Client, sa.Engine],
) -> None:
    """Walked from the card (before the fifth session), this sibling was missed until the
    night: the card's person's parent is in the snapshot, but the caseworker's tie to that
    parent is only in today's event on the caseworker's own record."""
    client, _ = served
    _refused_once_related(client, CHILD_OF_PARENT, WENCHE, WENCHE, PARENT_PID, "MOR", "mother")


def test_the_relatives_gate_with_odd_pids(served: tuple[Client, sa.Engine]) -> None:
    client, _ = served
    for pid in (
        PARENT_PID,
        f" {PARENT_PID} ",
        f"{PARENT_PID[:6]} {PARENT_PID[6:]}",
        f"{PARENT_PID[:6]}-{PARENT_PID[6:]}",
    ):
        response = client.lookup(CHILD_OF_PARENT, pid=pid, roles=PRIVILEGED)
        assert response.status_code in (401, 403), (pid, response.text)
        if response.status_code == 403:
            assert response.json()["code"] == "egen_familie"
    for pid in ("", "0" * 11, PARENT_PID + "0", ["x"], 17827430978):
        response = client.lookup(CHILD_OF_PARENT, pid=pid, roles=PRIVILEGED)
        assert response.status_code == 401, (pid, response.text)


def test_a_caseworker_known_by_an_old_number_is_still_kin(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    new = number("170374", 200)
    added = event(
        "cw-new",
        [new, PARENT_PID],
        "FOLKEREGISTERIDENTIFIKATOR_V1",
        folkeregisteridentifikator={
            "identifikasjonsnummer": new,
            "type": "FNR",
            "status": "I_BRUK",
        },
    )
    assert client.send_events([added]).json()["stored"] == 1
    response = client.lookup(CHILD_OF_PARENT, pid=new, roles=PRIVILEGED)
    assert response.status_code == 403, response.text


def test_a_refusal_names_no_relation_or_number(served: tuple[Client, sa.Engine]) -> None:
    client, _ = served
    refused = client.lookup(CHILD_OF_PARENT, pid=PARENT_PID, roles=PRIVILEGED)
    assert refused.status_code == 403
    assert CHILD_OF_PARENT not in refused.text and PARENT_PID not in refused.text
    # Anyone else sees the card, and no relative's number from the feed on it.
    card = client.lookup(CHILD_OF_PARENT, pid=WENCHE, roles=PRIVILEGED)
    assert card.status_code == 200
    assert PARENT_PID not in card.text
    assert "kin" not in card.json()


# -- store faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["feed_person", "feed_ident", "feed_event_ident", "feed_state"])
def test_an_unreadable_feed_table_fails_the_lookup_closed(
    served: tuple[Client, sa.Engine], table: str
) -> None:
    client, engine = served
    assert client.lookup(WENCHE).status_code == 200  # warm
    assert client.lookup(MARIANNE[0]).status_code == 200
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_gone"))
    cold = client.lookup(JOHN)  # never read: its facts must come from the broken store
    assert cold.status_code == 503, cold.text
    assert "Berg" not in cold.text
    warm = client.lookup(WENCHE)  # cached facts may answer, but never a card without them
    assert warm.status_code in (200, 503), warm.text
    if warm.status_code == 200:
        assert any(s["register"] == "folkeregister" for s in warm.json()["sources"])


def _fail_feed_audit(engine: sa.Engine) -> None:
    """The audit insert of a feed batch fails: the store fails mid-transaction."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER fail_feed_audit BEFORE INSERT ON audit_event "
                    "WHEN NEW.kind = 'feed_events' BEGIN SELECT RAISE(ABORT, 'disk'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION fail_feed_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN IF NEW.kind = 'feed_events' THEN RAISE EXCEPTION 'disk'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER fail_feed_audit BEFORE INSERT ON audit_event "
                    "FOR EACH ROW EXECUTE FUNCTION fail_feed_audit()"
                )
            )


def test_a_batch_whose_audit_event_fails_stores_nothing(
    served: tuple[Client, sa.Engine],
) -> None:
    client, engine = served
    _fail_feed_audit(engine)
    events = [event(f"atomic-{i}", [WENCHE]) for i in range(120)]  # three audit parts
    response = client.send_events([*events, "junk"])
    assert response.status_code in (500, 503), response.text
    assert stored_events(engine) == 0
    assert count(engine, "SELECT count(*) FROM feed_event_ident") == 0
    assert count(engine, "SELECT count(*) FROM feed_event_quarantine") == 0
    assert count(engine, "SELECT generation FROM feed_state") == 0


def test_a_locked_store_during_post_stores_nothing_partial(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path
) -> None:
    """A writer holding the lock (a hung migration, a DBA's transaction): the post waits or
    fails, and either way the batch is whole or absent."""
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    night(engine, sample / "night1")
    with serve(create_app(settings)) as url:
        client = Client(url, settings)
        blocker = engine.connect()
        try:
            tx = blocker.begin()
            if blocker.dialect.name == "sqlite":
                blocker.execute(sa.text("UPDATE feed_state SET inbox_error = inbox_error"))
            else:
                blocker.execute(sa.text("LOCK TABLE feed_event IN ACCESS EXCLUSIVE MODE"))
            try:
                response = client.send_events([event(f"lock-{i}", [WENCHE]) for i in range(60)])
                status = response.status_code
            except httpx.TimeoutException:
                status = 0  # hung: the client gave up
            tx.rollback()
        finally:
            blocker.close()
        stored = stored_events(engine)
        assert stored in (0, 60), stored
        assert (status == 200) == (stored == 60), status
        audited = count(engine, "SELECT count(*) FROM audit_event WHERE kind = 'feed_events'")
        assert (audited > 0) == (stored == 60)


def test_a_busy_sqlite_store_during_the_inbox_read_stores_nothing_and_moves_nothing(
    tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds SQLite's lock through the reader's busy timeout: the file stays
    in the inbox, nothing is half stored, and the next read stores it all."""
    monkeypatch.setenv("PERSONKORT_DATA_DIR", str(tmp_path / "data"))
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = open_engine(url)
    try:
        night(store, sample / "night1")
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        for f in sorted((sample / "hendelser").glob("hendelser_*.jsonl")):
            shutil.copy(f, inbox / f.name)
        delivered = sorted(p.name for p in inbox.glob("hendelser_*.jsonl"))
        blocker = store.connect()
        try:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                summary = read_inbox(url, str(inbox))
            except Exception:  # any failure is acceptable, a partial read is not
                summary = {"status": "failed"}
            blocker.exec_driver_sql("ROLLBACK")
        finally:
            blocker.close()
        assert summary["status"] != "read", summary
        assert sorted(p.name for p in inbox.glob("hendelser_*.jsonl")) == delivered
        assert stored_events(store) == 0
        again = read_inbox(url, str(inbox))
        assert again["status"] == "read" and again["stored"] == 6, again
        assert not list(inbox.glob("hendelser_*.jsonl"))
    finally:
        store.dispose()


# -- garbage snapshots --------------------------------------------------------------------


def _snapshot_lines(sample: Path) -> list[bytes]:
    path = sample / "night2" / "folkeregister" / "folkeregister_20261121.jsonl"
    return path.read_bytes().splitlines(keepends=True)


GARBAGE: dict[str, tuple[str, Any]] = {
    "empty": ("folkeregister_20261121.jsonl", lambda lines: b""),
    "all_invalid": (
        "folkeregister_20261121.jsonl",
        lambda lines: b"".join(b'{"folkeregisteridentifikator": 7}\n' for _ in lines),
    ),
    "duplicated": (
        "folkeregister_20261121.jsonl",
        lambda lines: b"".join(lines[:1] * len(lines)),
    ),
    "not_utf8": ("folkeregister_20261121.jsonl", lambda lines: b"".join(lines) + b"\xff\xfe\n"),
    "latin1": (
        "folkeregister_20261121.jsonl",
        lambda lines: b"".join(lines).decode("utf-8").encode("latin-1", errors="replace"),
    ),
    "not_json": ("folkeregister_20261121.jsonl", lambda lines: b"\x00\x01" * 5000),
    "bad_name": ("folkeregister_2026-11-21.jsonl", lambda lines: b"".join(lines)),
    "no_date": ("folkeregister_20261399.jsonl", lambda lines: b"".join(lines)),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_garbage_snapshot_publishes_the_night_and_keeps_the_last_state(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path, kind: str
) -> None:
    night(engine, sample / "night1")
    with engine.connect() as conn:
        first = published_night(conn)
        assert first is not None
        before = snapshot_in_force(conn, first)
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    name, make = GARBAGE[kind]
    lines = _snapshot_lines(sample)
    (drop / "folkeregister" / "folkeregister_20261121.jsonl").unlink()
    (drop / "folkeregister" / name).write_bytes(make(lines))
    extract = read_drop(drop)
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    assert outcome.counts["feed"]["status"] in ("refused", "missing"), outcome.counts["feed"]
    with engine.connect() as conn:
        served_night = published_night(conn)
        assert served_night is not None and served_night != first
        assert snapshot_in_force(conn, served_night) == before
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    with serve(create_app(settings)) as url:
        client = Client(url, settings)
        refused = client.lookup(CHILD_OF_PARENT, pid=PARENT_PID, roles=PRIVILEGED)
        assert refused.status_code == 403 and refused.json()["code"] == "egen_familie"


def test_a_snapshot_dated_in_the_future_does_not_swallow_todays_raises(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path
) -> None:
    night(engine, sample / "night1")
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    source = drop / "folkeregister" / "folkeregister_20261121.jsonl"
    source.rename(drop / "folkeregister" / "folkeregister_20991231.jsonl")
    outcome = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    with serve(create_app(settings)) as url:
        client = Client(url, settings)
        assert client.lookup(WENCHE).status_code == 200
        created = "2026-11-21T14:00:00+01:00"
        assert client.send_events([event("after", [WENCHE], created=created)]).json()["stored"]
        assert client.lookup(WENCHE).status_code == 403


def test_a_snapshot_older_than_the_one_in_force_does_not_replace_it(
    store_url: str, engine: sa.Engine, tmp_path: Path, sample: Path
) -> None:
    """A replayed old snapshot would take back markers and relations the newer one holds."""
    night(engine, sample / "night1")
    second = sample / "night2"
    outcome = run_night(
        engine, read_drop(second), drop_dir=str(second), fingerprint=fingerprint(second)
    )
    assert outcome.counts["feed"]["status"] == "read"
    with engine.connect() as conn:
        served_night = published_night(conn)
        assert served_night is not None
        before = snapshot_in_force(conn, served_night)
    drop = tmp_path / "night3"
    shutil.copytree(sample / "night2", drop)
    (drop / "folkeregister" / "folkeregister_20261121.jsonl").unlink()
    old = sample / "night1" / "folkeregister" / "folkeregister_20261120.jsonl"
    shutil.copy(old, drop / "folkeregister" / old.name)
    raised = [n for n in ("01838621844", "06815319026", "20927720338")]  # kode 6 since night2
    assert all(
        ServedCards(engine).by_ident(n).card.protection == "STRENGT_FORTROLIG" for n in raised
    )
    outcome = run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    protection = {n: ServedCards(engine).by_ident(n).card.protection for n in raised}
    assert protection == dict.fromkeys(raised, "STRENGT_FORTROLIG")
    with engine.connect() as conn:
        served_night = published_night(conn)
        assert served_night is not None
        assert snapshot_in_force(conn, served_night) == before
