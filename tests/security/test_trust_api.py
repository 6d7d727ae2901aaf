"""Broken promises of issue 10 found by attacking the API, each as a regression test over real
HTTP on SQLite and PostgreSQL: consents, the gate around them, purposes, redirects, rate limits
and what a lookup's audit event records."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from personkort.ident import IdentError, try_parse
from personkort.store import models as m
from personkort.store.served import ServedCards
from tests.security.server import Server, start

LUND = "27905340064"  # Infotrygd AP, Flyt OKSOS in Oslo
EDVARDSEN = "18929524558"  # strengt fortrolig adresse
NIELSEN = "28889527163"  # skjermet
UNKNOWN = "15928011418"
TODAY = dt.date.today()


@pytest.fixture
def server(store_url: str, tmp_path: Path, sample: Path) -> Iterator[Server]:
    yield from start(store_url, tmp_path, sample)


def consent(ident: str, scope: str = "sosial", **extra: object) -> dict[str, object]:
    return {
        "ident": ident,
        "scope": scope,
        "valid_from": TODAY.isoformat(),
        "valid_to": (TODAY + dt.timedelta(days=90)).isoformat(),
        "form_reference": "skjema-1",
        **extra,
    }


def consent_rows(server: Server) -> int:
    with server.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(m.ConsentRow)) or 0


def unverified_number(server: Server) -> tuple[str, str]:
    """(a number a card holds only through a municipal record that neither a state register
    nor the Folkeregister verifies, that card's id)."""
    with server.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.SourceRecord.ident, m.CardLink.card_id)
            .join(m.CardLink, m.CardLink.record_key == m.SourceRecord.record_key)
            .where(
                m.SourceRecord.register == "kommune",
                m.SourceRecord.ident.is_not(None),
                m.SourceRecord.valid_to.is_(None),
                m.CardLink.valid_to.is_(None),
            )
        ).all()
    served = ServedCards(server.engine)  # the card as lookups see it: the feed verifies too
    for ident, card_id in rows:
        card = served.by_card_id(card_id).card
        valid = not isinstance(try_parse(ident), IdentError)
        if valid and card and ident not in card.verified_idents and card.verified_idents:
            return ident, card_id
    pytest.fail("the sample has no municipal-only number on a card with verified numbers")


def test_a_consent_under_a_municipal_only_number_is_refused(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    """Without the Folkeregister's snapshot (which verifies every such number the sample has),
    a number only a hand-typed municipal record holds carries no consent."""
    without_feed = tmp_path / "sample"
    shutil.copytree(
        sample / "night1", without_feed / "night1", ignore=shutil.ignore_patterns("folkeregister")
    )
    for server in start(store_url, tmp_path, without_feed):
        ident, _ = unverified_number(server)
        response = server.post("/api/v1/consents", consent(ident))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "ikke_verifisert_ident"
        assert consent_rows(server) == 0


def test_a_consent_and_its_event_are_stored_together_or_not_at_all(server: Server) -> None:
    # The audit log cannot be written: the consent must not be stored either.
    with server.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event RENAME TO audit_event_away"))
    try:
        response = server.post("/api/v1/consents", consent(LUND))
        assert response.status_code == 503, response.text
        assert consent_rows(server) == 0
    finally:
        with server.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_event_away RENAME TO audit_event"))
    given = server.post("/api/v1/consents", consent(LUND))
    assert given.status_code == 201, given.text
    with server.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_event RENAME TO audit_event_away"))
    try:
        withdrawn = server.post(f"/api/v1/consents/{given.json()['id']}/withdraw", {})
        assert withdrawn.status_code == 503
    finally:
        with server.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_event_away RENAME TO audit_event"))
    with server.engine.connect() as conn:
        assert conn.scalar(sa.select(m.ConsentRow.withdrawn_at)) is None  # still in force
    kinds = [e["kind"] for e in server.events(kind="consent_registered")]
    assert kinds == ["consent_registered"]


@pytest.mark.parametrize("path", ["/api/v1/consents", "/api/v1/consents/search"])
def test_consents_of_protected_persons_answer_as_unknown_ones(server: Server, path: str) -> None:
    body = consent if path.endswith("consents") else (lambda i: {"ident": i})
    unknown = server.post(path, body(UNKNOWN))
    for protected in (EDVARDSEN, NIELSEN):
        refused = server.post(path, body(protected))
        assert refused.status_code == unknown.status_code == 404
        assert {k: v for k, v in refused.json().items() if k != "trace_id"} == {
            k: v for k, v in unknown.json().items() if k != "trace_id"
        }
    assert consent_rows(server) == 0
    refusals = server.events(kind="consent_refused")
    assert len(refusals) == 3
    assert {e["data"]["reason_codes"][0] for e in refusals} == {
        "ukjent_person",
        "strengt_fortrolig_adresse",
        "skjermet_person",
    }
    # Whoever may open the card may act on its consents (with a purpose, as for the card).
    opened = server.post(
        path, body(EDVARDSEN) | {"purpose": "oppfølging av vedtak"}, roles=["veileder", "kode6"]
    )
    assert opened.status_code in (200, 201), opened.text


def test_own_card_consents_are_refused(server: Server) -> None:
    response = server.post("/api/v1/consents/search", {"ident": LUND}, pid=LUND)
    assert response.status_code == 404


def test_consent_search_is_audited(server: Server) -> None:
    assert server.post("/api/v1/consents/search", {"ident": LUND}).status_code == 200
    found = server.events(kind="consent_search", ident=LUND)
    assert len(found) == 1 and found[0]["data"]["decision"] == "permit"


def test_a_lookup_by_card_id_is_findable_by_every_number_on_the_card(server: Server) -> None:
    card = server.post("/api/v1/personkort", {"ident": LUND}).json()
    assert server.get(f"/api/v1/personkort/{card['card_id']}").status_code == 200
    numbers = {i["value"] for i in card["identity"]["idents"]} | {
        i["value"] for i in card["identity"]["earlier_idents"]
    }
    for number in numbers:
        lookups = server.events(kind="lookup", ident=number)
        assert len(lookups) == 2, number  # by number and by card id


@pytest.mark.parametrize(
    "purpose", [" ", "\u200b", "\u200b\u200c\u2060", "\t\n", "x", "..", "\u00ad\u00ad\u00ad"]
)
def test_a_purpose_must_be_real_text(server: Server, purpose: str) -> None:
    response = server.post(
        "/api/v1/personkort", {"ident": EDVARDSEN, "purpose": purpose}, roles=["veileder", "kode6"]
    )
    assert response.status_code == 403 and response.json()["code"] == "formal_mangler"


def test_a_purpose_has_one_limit_and_never_travels_in_a_url(server: Server) -> None:
    long = "a" * 501
    response = server.post(
        "/api/v1/personkort", {"ident": EDVARDSEN, "purpose": long}, roles=["veileder", "kode6"]
    )
    assert response.status_code == 422
    card_id = server.post("/api/v1/personkort", {"ident": LUND}).json()["card_id"]
    in_url = server.get(f"/api/v1/personkort/{card_id}?purpose=oppfolging")
    assert in_url.status_code == 400 and in_url.json()["code"] == "formal_i_url"
    opened = server.post(f"/api/v1/personkort/{card_id}/open", {"purpose": "oppfølging"})
    assert opened.status_code == 200 and opened.json()["card_id"] == card_id
    protected = server.post(
        "/api/v1/personkort",
        {"ident": EDVARDSEN, "purpose": "oppfølging"},
        roles=["veileder", "kode6"],
    ).json()["card_id"]
    by_id = server.post(
        f"/api/v1/personkort/{protected}/open",
        {"purpose": "oppfølging"},
        roles=["veileder", "kode6"],
    )
    assert by_id.status_code == 200
    privileged = server.events(privileged=True, card_id=protected)
    assert [e["data"]["purpose"] for e in privileged] == ["oppfølging", "oppfølging"]


def test_a_merged_away_id_checks_the_role_audits_and_keeps_the_query(server: Server) -> None:
    card = server.post("/api/v1/personkort", {"ident": LUND}).json()
    with server.engine.begin() as conn:
        conn.execute(
            sa.insert(m.CardEvent).values(
                night_id=1, kind="merge", old_ids=["pk-00000000000001d1"], new_ids=[card["card_id"]]
            )
        )
    refused = server.get("/api/v1/personkort/pk-00000000000001d1", roles=[])
    assert refused.status_code == 403 and "location" not in refused.headers
    moved = server.get("/api/v1/personkort/pk-00000000000001d1?view=kort")
    assert moved.status_code == 308
    assert moved.headers["location"] == f"/api/v1/personkort/{card['card_id']}?view=kort"
    events = server.events(kind="lookup", card_id="pk-00000000000001d1")
    assert [e["data"]["decision"] for e in events] == ["moved"]
    assert events[0]["data"]["moved_to"] == card["card_id"]
    denied = server.events(kind="lookup", decision="deny")
    assert [e["data"]["requested_card_id"] for e in denied] == ["pk-00000000000001d1"]


def test_the_role_is_checked_before_any_person_is_read(server: Server) -> None:
    known = server.post("/api/v1/personkort", {"ident": LUND}, roles=["forvalter"])
    unknown = server.post("/api/v1/personkort", {"ident": UNKNOWN}, roles=["forvalter"])
    assert known.status_code == unknown.status_code == 403
    assert known.json()["code"] == unknown.json()["code"] == "mangler_rolle"
    assert known.json()["detail"] == unknown.json()["detail"]
    events = server.events(kind="lookup", decision="deny")
    assert [e["data"]["card_id"] for e in events] == [None, None]  # no card was read


def test_lookups_are_rate_limited_per_caseworker(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    for limited in start(store_url, tmp_path, sample, lookups_per_minute=3):
        answers = [limited.post("/api/v1/personkort", {"ident": LUND}) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "for_mange_oppslag"
        assert int(refused.headers["retry-after"]) >= 1
        # another caseworker is not held back by the first one's lookups
        other = limited.post("/api/v1/personkort", {"ident": LUND}, sub="Z222222")
        assert other.status_code == 200
        denied = limited.events(kind="lookup", decision="deny")
        assert [e["data"]["reason_codes"] for e in denied] == [["for_mange_oppslag"]]
