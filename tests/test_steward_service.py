"""The stewards' use cases: the queue with both records from the store, rulings that refuse a
pair decided since the steward looked (also under concurrency), "later", and the next night
honouring a ruling. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from adapters import read_drop
from adapters.drop import fingerprint
from api.app import create_app
from api.auth import mint
from api.settings import Settings
from personkort.audit import AuditLog
from personkort.nightly import run_night
from personkort.policy.engine import Caseworker
from personkort.services import Denied, Invalid
from personkort.services.stewardship import AlreadyDecided, ReviewPair, StewardService
from personkort.store import models as m
from personkort.store import open_engine
from tests.api_server import serve
from tests.conftest import SAMPLE, read_csv

STEWARD = Caseworker("Z200001", "stat", "nav-forvaltning", frozenset({"forvalter"}))
OTHER = Caseworker("Z200002", "stat", "nav-forvaltning", frozenset({"forvalter"}))
CASEWORKER = Caseworker("Z100001", "stat", "nav-lillestrom", frozenset({"veileder"}))


def truth(night: str = "night1") -> dict[str, str]:
    """record key -> the person it really is, from the sample's answer key."""
    rows = read_csv(SAMPLE / night / "truth" / "links.csv")
    return {f"{r['register']}:{r['source_key']}": r["person_key"] for r in rows}


def same_in_truth(pair: ReviewPair) -> bool:
    people = truth()
    return people[pair.record_key] == people[pair.candidate_key]


@dataclass
class Store:
    engine: sa.Engine
    service: StewardService
    audit: AuditLog
    data_dir: str
    url: str

    def night(self, name: str) -> None:
        drop = SAMPLE / name
        run_night(self.engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))

    def rulings_on(self, pair: ReviewPair) -> int:
        d = m.DecisionRow
        keys = (pair.record_key, pair.candidate_key)
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(d)
                    .where(d.record_a.in_(keys), d.record_b.in_(keys))
                )
                or 0
            )


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    engine = open_engine(store_url)
    data_dir = str(tmp_path / "data")
    audit = AuditLog.from_settings(engine, data_dir)
    service = StewardService(engine, audit, lambda: dt.datetime.now(dt.UTC))
    built = Store(engine, service, audit, data_dir, store_url)
    built.night("night1")
    yield built
    audit.close()
    engine.dispose()


def test_only_stewards_see_the_queue(store: Store) -> None:
    with pytest.raises(Denied):
        store.service.queue(CASEWORKER)
    with pytest.raises(Denied):
        store.service.settle(CASEWORKER, "a", "b", "same", "x")


def test_a_pair_shows_both_records_from_the_store(store: Store) -> None:
    queue = store.service.queue(STEWARD)
    assert queue, "the sample's first night queues pairs"
    pair = store.service.pair(STEWARD, queue[0].id)
    assert pair.a is not None and pair.b is not None
    assert pair.a.record_key == pair.record_key and pair.b.record_key == pair.candidate_key
    with store.engine.connect() as conn:
        surname = conn.scalar(
            sa.select(m.SourceRecord.surname).where(m.SourceRecord.record_key == pair.record_key)
        )
    assert pair.a.surname == surname
    by_field = {f.field: f for f in pair.fields}
    # The marks follow the records' own values, and agree with the evidence where both say.
    for f in pair.fields:
        if f.a is None or f.b is None:
            assert f.state == "mangler"
        else:
            assert f.state == ("lik" if f.a.casefold() == f.b.casefold() else "ulik")
    if pair.evidence.get("surname") == "equal":
        assert by_field["Etternavn"].state == "lik"
    assert pair.seen == "none" and pair.state == "open"


def test_a_stale_decision_is_refused_and_names_who_decided(store: Store) -> None:
    pair = store.service.queue(STEWARD)[0]
    first = store.service.decide_review(OTHER, pair.id, "not_same", "ulike personer", "none")
    assert first.ruling is not None
    with pytest.raises(AlreadyDecided) as refused:
        store.service.decide_review(STEWARD, pair.id, "same", "samme", "none")
    assert refused.value.ruling.steward == "Z200002"
    assert store.rulings_on(pair) == 1
    # Having seen the newest ruling, a steward may overrule it.
    again = store.service.decide_review(STEWARD, pair.id, "same", "sjekket", str(first.ruling.id))
    assert again.ruling is not None and store.rulings_on(pair) == 2
    shown = store.service.queue(STEWARD)[0]
    assert shown.state == "decided" and shown.ruling and shown.ruling.steward == "Z200001"


def test_two_concurrent_decisions_store_one(store: Store) -> None:
    pair = store.service.queue(STEWARD)[0]
    before = len(store.audit.events(kind="steward_decision", limit=1000))
    barrier = threading.Barrier(2)
    results: list[object] = []

    def decide(worker: Caseworker, outcome: str) -> None:
        barrier.wait()
        try:
            results.append(store.service.decide_review(worker, pair.id, outcome, "x", "none"))
        except AlreadyDecided as exc:
            results.append(exc)

    threads = [
        threading.Thread(target=decide, args=(STEWARD, "same")),
        threading.Thread(target=decide, args=(OTHER, "not_same")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    refused = [r for r in results if isinstance(r, AlreadyDecided)]
    assert len(results) == 2 and len(refused) == 1
    assert store.rulings_on(pair) == 1
    assert len(store.audit.events(kind="steward_decision", limit=1000)) == before + 1


def test_later_keeps_the_pair_queued_with_the_comment(store: Store) -> None:
    pair = store.service.queue(STEWARD)[0]
    with pytest.raises(Invalid):
        store.service.decide_review(STEWARD, pair.id, "later", "  ", "none")
    store.service.decide_review(STEWARD, pair.id, "later", "venter på svar fra kommunen", "none")
    shown = next(p for p in store.service.queue(STEWARD) if p.id == pair.id)
    assert shown.state == "later" and shown.deferral is not None
    assert shown.deferral.comment == "venter på svar fra kommunen"
    assert store.rulings_on(pair) == 0  # "later" binds no night
    events = store.audit.events(kind="steward_decision", decision="later", limit=10)
    assert [e["data"]["decision"] for e in events] == ["later"]
    # A ruling after it settles the pair.
    store.service.decide_review(STEWARD, pair.id, "not_same", "avklart", "none")
    assert next(p for p in store.service.queue(STEWARD) if p.id == pair.id).state == "decided"


def test_the_next_night_honours_a_ruling(store: Store) -> None:
    queue = store.service.queue(STEWARD)
    for pair in queue:
        outcome = "same" if same_in_truth(pair) else "not_same"
        store.service.decide_review(STEWARD, pair.id, outcome, "fra fasit", "none")
    assert {r.status for r in store.service.rulings(STEWARD)} == {"pending"}
    store.night("night2")
    statuses = store.service.rulings(STEWARD)
    assert len(statuses) == len(queue)
    assert {r.status for r in statuses} == {"honoured"}
    for r in statuses:
        assert (r.card_a == r.card_b) == r.ruling.same
    settled = {frozenset((p.record_key, p.candidate_key)) for p in queue}
    again = {frozenset((p.record_key, p.candidate_key)) for p in store.service.queue(STEWARD)}
    assert not settled & again  # a ruled pair is not queued again


def test_the_api_answers_a_stale_decision_with_409(store: Store) -> None:
    settings = Settings(store_url=store.url, data_dir=store.data_dir)
    token = mint(
        settings,
        {"sub": "Z200001", "employer": "stat", "office": "nav-forvaltning", "roles": ["forvalter"]},
    )
    headers = {"Authorization": f"Bearer {token}"}
    with serve(create_app(settings)) as url:
        reviews = httpx.get(f"{url}/api/v1/steward/reviews", headers=headers, timeout=30).json()
        first = reviews[0]
        assert first["state"] == "open" and first["ruling_id"] == "none"
        body = {"record_a": first["record_key"], "record_b": first["candidate_key"]}
        later = httpx.post(
            f"{url}/api/v1/steward/decisions",
            json={**body, "outcome": "later", "reason": "venter", "seen": "none"},
            headers=headers,
            timeout=30,
        )
        assert later.status_code == 201 and later.json()["outcome"] == "later"
        ok = httpx.post(
            f"{url}/api/v1/steward/decisions",
            json={**body, "same": False, "seen": "none"},
            headers=headers,
            timeout=30,
        )
        assert ok.status_code == 201 and ok.json()["ruling_id"]
        stale = httpx.post(
            f"{url}/api/v1/steward/decisions",
            json={**body, "outcome": "same", "seen": "none"},
            headers=headers,
            timeout=30,
        )
        assert stale.status_code == 409
        assert stale.json()["code"] == "allerede_avgjort"
        both = httpx.post(
            f"{url}/api/v1/steward/decisions",
            json={**body, "same": True, "outcome": "same"},
            headers=headers,
            timeout=30,
        )
        assert both.status_code == 422
        shown = httpx.get(f"{url}/api/v1/steward/reviews", headers=headers, timeout=30).json()
        assert shown[0]["state"] == "decided"
        assert shown[0]["ruling_id"] == str(ok.json()["ruling_id"])
