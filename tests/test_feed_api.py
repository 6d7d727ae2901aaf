"""The Folkeregister feed through the real API over real HTTP, on SQLite and PostgreSQL, with
the shared sample's answer keys: relatives refused, the feed's markers counted, and the day's
events seen at the next lookup (card cache on, two API worker processes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from bench.api.run import start, stop
from personkort.nightly import run_night
from personkort.store import open_engine
from personkort.store.served import ServedCards
from tests.api_server import free_port, serve
from tests.conftest import read_csv

PRIVILEGED = ["veileder", "kode6", "kode7", "skjermet"]  # no role opens a relative's card
SKJERMET = ["veileder", "skjermet"]  # one of the sample's dead is a NAV employee
FEED_TOKEN = {"sub": "folkeregister", "office": "folkeregister", "roles": ["folkeregister"]}


class Client:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url, self.settings = url, settings

    def token(self, **claims: object) -> str:
        base = {"sub": "Z111111", "employer": "stat", "office": "nav-oslo", "roles": ["veileder"]}
        return mint(self.settings, {**base, **claims})

    def lookup(self, ident: str, **claims: object) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/v1/personkort",
            json={"ident": ident, "purpose": "oppfølging av saken"},
            headers={"Authorization": f"Bearer {self.token(**claims)}"},
            timeout=30,
        )

    def send_events(self, body: object, **claims: object) -> httpx.Response:
        return httpx.post(
            f"{self.url}/api/v1/folkeregister/hendelser",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {self.token(**{**FEED_TOKEN, **claims})}",
                "Content-Type": "application/json",
            },
            timeout=30,
        )


def numbers(sample: Path) -> dict[str, list[str]]:
    """Each true person's numbers, the one in use first."""
    rows = read_csv(sample / "night1" / "truth" / "persons.csv")
    return {r["person_key"]: [n for n in (r["fnr"], r["dnr"]) if n] for r in rows}


def night(engine: sa.Engine, drop: Path) -> None:
    extract = read_drop(drop)
    assert extract.feed is not None, "the drop's snapshot was not read"
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published", outcome.message
    assert outcome.counts["feed"]["status"] == "read"


@pytest.fixture
def served(store_url: str, tmp_path: Path, sample: Path) -> Iterator[tuple[Client, sa.Engine]]:
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    engine = open_engine(store_url)
    night(engine, sample / "night1")
    app = create_app(settings)
    with serve(app) as url:
        yield Client(url, settings), engine
    app.state.services.engine.dispose()  # PostgreSQL's connections are few; give them back
    engine.dispose()


def test_every_caseworker_is_refused_their_relatives_and_opens_others(
    served: tuple[Client, sa.Engine], sample: Path
) -> None:
    client, engine = served
    held = numbers(sample)
    rows = read_csv(sample / "night1" / "truth" / "relatives.csv")
    assert len(rows) == 10
    codes = {
        "parent": "egen_familie",
        "child": "egen_familie",
        "sibling": "egen_familie",
        "partner": "egen_partner",
        "coparent": "egen_partner",
    }
    relatives: dict[str, set[str]] = {}
    for row in rows:
        relatives.setdefault(row["caseworker_pid"], set()).add(row["person_key"])
        for number in held[row["person_key"]]:  # by every number of the person
            response = client.lookup(number, pid=row["caseworker_pid"], roles=PRIVILEGED)
            assert response.status_code == 403, (row, response.text)
            problem = response.json()
            assert problem["code"] == codes[row["relation"]], row
            assert problem["detail"] and problem["trace_id"]
            assert number not in response.text
    # The same caseworkers open everyone else's card (a sample of the others).
    others = [k for k in sorted(held) if not any(k in r for r in relatives.values())]
    for pid in relatives:
        for key in random.Random(pid).sample(others, 8):
            response = client.lookup(held[key][0], pid=pid, roles=PRIVILEGED)
            assert response.status_code in (200, 404), (pid, key, response.text)
            if response.status_code == 403:
                pytest.fail(f"{key} refused to {pid}: {response.json()['code']}")
    with engine.connect() as conn:
        denials = conn.scalar(
            sa.text("SELECT count(*) FROM audit_event WHERE kind = 'lookup' AND body LIKE :c"),
            {"c": "%egen_%"},
        )
    assert denials and denials >= len(rows)


def test_every_person_carries_the_strictest_marker_the_feed_included(
    served: tuple[Client, sa.Engine], sample: Path
) -> None:
    client, engine = served
    held = numbers(sample)
    markers = {
        r["person_key"]: r["gradering"]
        for r in read_csv(sample / "night1" / "truth" / "feed_protection.csv")
    }
    assert markers
    cards = ServedCards(engine)
    answered = Counter()
    for key in held:
        card = cards.by_ident(held[key][0]).card
        if card is None:
            continue
        want = markers.get(key, "").replace("_UTLAND", "") or None
        assert card.protection == want, key
        if want is None:
            continue
        # over HTTP, a state caseworker without kode 6 / kode 7 rights
        response = client.lookup(held[key][0])
        answered[response.status_code] += 1
        if response.status_code == 404:  # a municipal client: nothing on the card is theirs
            assert {s.register for s in card.sources} <= {"kommune", "folkeregister"}, key
        elif want == "STRENGT_FORTROLIG":
            assert response.status_code == 403, (key, response.text)
            assert response.json()["code"] == "strengt_fortrolig_adresse"
        else:
            assert response.status_code == 200, (key, response.text)
            reasons = {w["reason"] for w in response.json()["withheld"]}
            assert "fortrolig_adresse" in reasons, key
    assert answered[403] and answered[200], answered


def test_a_night_without_the_feed_keeps_its_last_state(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    engine = open_engine(store_url)
    night(engine, sample / "night1")
    drop = tmp_path / "night2"
    shutil.copytree(sample / "night2", drop)
    shutil.rmtree(drop / "folkeregister")
    extract = read_drop(drop)
    assert extract.feed is None and extract.feed_refusal is not None
    outcome = run_night(engine, extract, drop_dir=str(drop), fingerprint=fingerprint(drop))
    assert outcome.status == "published"
    assert outcome.counts["feed"]["status"] == "missing"
    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    row = read_csv(sample / "night1" / "truth" / "relatives.csv")[0]
    key = numbers(sample)[row["person_key"]][0]
    with serve(create_app(settings)) as url:
        client = Client(url, settings)
        response = client.lookup(key, pid=row["caseworker_pid"], roles=PRIVILEGED)
        assert response.status_code == 403 and response.json()["code"].startswith("egen_")
        card = client.lookup(key, roles=PRIVILEGED).json()  # anyone else: the card says so
    states = {s["register"]: s for s in card["sources"]}
    assert states["folkeregister"]["tonight"] == "missing"
    assert states["folkeregister"]["may_be_old"] is True
    assert states["folkeregister"]["data_from"] == "2026-11-20"  # the last snapshot's
    assert any(s["tonight"] == "read" and not s["may_be_old"] for s in card["sources"])


def test_bad_events_are_quarantined_and_callers_without_the_role_refused(
    served: tuple[Client, sa.Engine], sample: Path
) -> None:
    client, engine = served
    events = [
        json.loads(line)
        for f in sorted((sample / "hendelser").glob("*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    refused = client.send_events(events, roles=["veileder"])
    assert refused.status_code == 403
    broken = {**events[0], "opprettet": "2026-11-20T10:15:00"}  # no offset
    response = client.send_events([*events, broken, "not an event"])
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert receipt["received"] == len(events) + 2
    assert receipt["quarantined"] == 2 and receipt["stored"] == 6 and receipt["duplicates"] == 1
    assert receipt["received"] == receipt["stored"] + receipt["duplicates"] + receipt["quarantined"]
    again = client.send_events(events).json()
    assert again["stored"] == 0 and again["duplicates"] == len(events)
    assert client.send_events({"not": "a list"}).json()["quarantined"] == 1
    response = httpx.post(
        f"{client.url}/api/v1/folkeregister/hendelser",
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {client.token(**FEED_TOKEN)}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT count(*) FROM feed_event"))
        quarantined = conn.execute(
            sa.text("SELECT location, reason FROM feed_event_quarantine")
        ).all()
        audited = conn.scalar(
            sa.text("SELECT count(*) FROM audit_event WHERE kind = 'feed_events'")
        )
    assert stored == 6
    assert {q.location for q in quarantined} >= {"api:8", "api:9", "api:body"}
    assert all(q.reason for q in quarantined)
    assert audited and audited >= 4  # the refusal, and one per accepted batch


def _expected(sample: Path) -> dict[str, str]:
    return {r["person_key"]: r["effect"] for r in read_csv(sample / "hendelser" / "expected.csv")}


def test_the_days_events_count_at_the_next_lookup_in_every_worker(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    """Two uvicorn workers with the card cache on: every card is read (and cached) in both
    before the events arrive, in any order and twice over; the next lookups see them."""
    engine = open_engine(store_url)
    night(engine, sample / "night1")
    settings = Settings(store_url=store_url)  # the keys the night was written with
    env = {
        **os.environ,
        "PERSONKORT_STORE_URL": store_url,
        "PERSONKORT_DATA_DIR": settings.data_dir,
        "PERSONKORT_DEV_MODE": "1",
        "PERSONKORT_CARD_CACHE_SIZE": "20000",
    }
    port = free_port()
    proc = start(["api.app:create_app", "--factory"], env, port, workers=2)
    try:
        client = Client(f"http://127.0.0.1:{port}", settings)
        held = numbers(sample)
        expected = _expected(sample)
        for _ in range(6):  # warm both workers' caches
            for key in expected:
                assert client.lookup(held[key][0], roles=SKJERMET).status_code == 200, key
        events = [
            json.loads(line)
            for f in sorted((sample / "hendelser").glob("*.jsonl"))
            for line in f.read_text().splitlines()
            if line.strip()
        ]
        shuffled = events + events[:3]
        random.Random(13).shuffle(shuffled)
        for part in (shuffled[:4], shuffled[4:]):
            assert client.send_events(part).status_code == 200
        for _ in range(4):  # several lookups each: both workers answer some
            for key, effect in expected.items():
                response = client.lookup(held[key][0], roles=SKJERMET)
                if effect == "STRENGT_FORTROLIG":
                    assert response.status_code == 403, (key, response.text)
                    assert response.json()["code"] == "strengt_fortrolig_adresse"
                    continue
                assert response.status_code == 200, (key, response.text)
                deaths = {d["value"] for d in response.json()["identity"]["death_date"]}
                if effect.startswith("died "):
                    assert effect.removeprefix("died ") in deaths, key
                else:
                    assert not deaths, key
    finally:
        stop(proc)


def test_a_relation_added_during_the_day_refuses_at_the_next_lookup(
    served: tuple[Client, sa.Engine],
) -> None:
    client, _ = served
    lund, caseworker = "27905340064", "17827430978"  # not related in the snapshot
    assert client.lookup(lund, pid=caseworker).status_code == 200  # cached in this process
    event = {
        "hendelseId": "rel-1",
        "opprettet": "2026-11-20T14:00:00+01:00",
        "personidenter": [lund],
        "opplysningstype": "FORELDERBARNRELASJON_V1",
        "endringstype": "OPPRETTET",
        "tidligereHendelseId": None,
        "forelderBarnRelasjon": {"relatertPersonsIdent": caseworker, "relatertPersonsRolle": "FAR"},
    }
    assert client.send_events([event]).json()["stored"] == 1
    response = client.lookup(lund, pid=caseworker)
    assert response.status_code == 403 and response.json()["code"] == "egen_familie"
    assert client.lookup(lund, pid="01810664432").status_code == 200  # anyone else still opens


def test_a_municipal_number_the_feed_verifies_can_carry_a_consent(
    served: tuple[Client, sa.Engine],
) -> None:
    """P00000002 is known only to Asker's Flyt; the feed holds the number and agrees on birth
    date and name, so the number is verified: a consent may rest on it (it could not before)."""
    client, _ = served
    number = "08836813155"
    asker = {"employer": "kommune:3203", "office": "nav-asker"}
    card = client.lookup(number, **asker).json()
    registers = {i["source"]["register"] for i in card["identity"]["idents"]}
    assert registers == {"kommune"} or registers == {"kommune", "folkeregister"}
    assert any(n["source"]["register"] == "folkeregister" for n in card["identity"]["names"])
    today = dt.date.today()
    response = httpx.post(
        f"{client.url}/api/v1/consents",
        json={
            "ident": number,
            "scope": "okonomi",
            "valid_from": today.isoformat(),
            "valid_to": (today + dt.timedelta(days=90)).isoformat(),
            "form_reference": "skjema-12",
        },
        headers={"Authorization": f"Bearer {client.token(**asker)}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    card = client.lookup(number, **asker).json()
    assert [c["in_force"] for c in card["consents"]] == [True]
    # Another municipality's caseworker sees the withheld service (the policy's marker) and
    # nothing of the person: not even the feed's name, birth date or numbers.
    other = client.lookup(number, employer="kommune:0301", office="nav-oslo").json()
    assert other["municipal_services"] and other["municipal_services"][0]["withheld"]
    assert not any(other["identity"].values())
    assert "Jenssen" not in json.dumps(other) and number not in json.dumps(other)
