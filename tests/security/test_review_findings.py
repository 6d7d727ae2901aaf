"""Holes a reviewer found by attacking the trust layer after it was built (issue 10), each as a
regression test: consents of a card with nothing on it, invisible purposes, identity numbers in
id fields, audit time edits, unaudited proofs, consent enumeration, echoed field names, NUL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from personkort.audit import AuditLog, audit_keys, verify
from personkort.card import Card, Source, Sourced
from personkort.policy.engine import Caseworker
from personkort.purpose import PurposeError, clean_purpose
from personkort.services.consents import ConsentService
from personkort.services.errors import NotFound
from personkort.services.policies import PolicyHolder
from personkort.store import open_engine
from personkort.store.served import Found
from tests.policy_fixtures import services
from tests.security.server import Server, start

LUND = "27905340064"
EDVARDSEN = "18929524558"
RELATIVE = "01017010170"  # valid, held by no state register


@pytest.fixture
def server(store_url: str, tmp_path: Path, sample: Path) -> Iterator[Server]:
    yield from start(store_url, tmp_path, sample)


class OneCard:
    """The served cards, holding one person known only from another municipality's RUS."""

    def __init__(self, card: Card) -> None:
        self.card = card

    def by_ident(self, ident: str, pid: str | None = None) -> Found:
        return Found(1, self.card if ident in self.card.all_idents else None)


def test_consents_of_a_card_with_nothing_for_the_caller_answer_as_unknown(tmp_path: Path) -> None:
    src = Source("kommune", "sosio:3205:9", "sosio_3205:line:9", 1)
    rus = next(s for s in services("3205") if s.service == "RUS")
    card = Card("pk-00000000000000a1", 1, None, False, False)
    card.sources, card.idents = [src], [Sourced(RELATIVE, src)]
    card.municipal_services = [dataclasses.replace(rus, source=src)]
    engine = open_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    audit = AuditLog(engine, audit_keys(str(tmp_path)))
    from personkort.services.ratelimit import LookupLimiter

    consents = ConsentService(
        engine,
        OneCard(card),  # type: ignore[arg-type]
        PolicyHolder(None, engine, audit),
        audit,
        lambda: dt.datetime.now(dt.UTC),
        LookupLimiter(0),
    )
    worker = Caseworker("Z1", "stat", "nav-lillestrom", frozenset({"veileder"}))
    for call in (
        lambda: consents.search(worker, RELATIVE),
        lambda: consents.register(
            worker,
            ident=RELATIVE,
            scope="sosial",
            valid_from=dt.date.today(),
            valid_to=dt.date.today(),
            form_reference="s-1",
        ),
    ):
        with pytest.raises(NotFound) as refused:
            call()
        assert refused.value.code == "ukjent_person"
    owner = Caseworker("K1", "kommune:3205", "nav-lillestrom", frozenset({"veileder"}))
    assert consents.search(owner, RELATIVE) == []  # the owner's side may know the person
    audit.close()


@pytest.mark.parametrize("blank", ["\u3164\u3164\u3164", "\uffa0\u115f\u1160", "\u2800" * 4])
def test_letters_that_show_as_nothing_are_no_purpose(server: Server, blank: str) -> None:
    assert clean_purpose(blank) is None
    response = server.post(
        "/api/v1/personkort", {"ident": EDVARDSEN, "purpose": blank}, roles=["veileder", "kode6"]
    )
    assert response.status_code == 403 and response.json()["code"] == "formal_mangler"


@pytest.mark.parametrize("text", ["279053*40064", "(279053)40064", "279053 og 40064"])
def test_a_purpose_with_an_identity_number_is_refused(text: str) -> None:
    with pytest.raises(PurposeError) as refused:
        clean_purpose(f"oppfølging av {text}")
    assert refused.value.code == "formal_med_nummer"


def test_a_typed_card_id_never_reaches_the_log_in_clear(server: Server) -> None:
    sneaky = "pk-27905340064abcde"
    assert server.get(f"/api/v1/personkort/{sneaky}", roles=[]).status_code == 403
    assert server.get(f"/api/v1/personkort/{sneaky}").status_code == 404
    bad = server.post("/api/v1/audit/events", {"card_id": LUND}, roles=["revisor"])
    assert bad.status_code == 422
    with server.engine.connect() as conn:
        bodies = conn.scalars(sa.text("SELECT body FROM audit_event")).all()
        columns = conn.scalars(sa.text("SELECT card_id FROM audit_event")).all()
    assert not any(LUND in b for b in bodies)
    assert not any(c and LUND in c for c in columns)


def test_moving_an_event_in_time_is_detected(store_url: str, tmp_path: Path) -> None:
    keys = audit_keys(str(tmp_path))
    audit = AuditLog(open_engine(store_url), keys)
    for n in range(3):
        audit.append("lookup", {"caseworker": {"sub": f"Z{n}"}}, trace_id=f"t{n}")
    audit.close()
    assert verify(audit.engine, keys).ok
    with audit.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_event SET at = '2001-01-01T00:00:00.000000Z' WHERE seq = 2")
        )
    assert verify(audit.engine, keys).first_bad_seq == 2
    with audit.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE audit_event SET at = (SELECT at FROM audit_event WHERE seq = 1)"
                " WHERE seq = 2"
            )
        )
        conn.execute(sa.text("UPDATE audit_event SET trace_id = 'other' WHERE seq = 3"))
    result = verify(audit.engine, keys)
    assert not result.ok and result.first_bad_seq in (2, 3)


def test_proofs_and_verifications_are_audited(server: Server) -> None:
    before = len(server.events(kind="audit_search"))
    assert server.get("/api/v1/audit/verify", roles=["revisor"]).status_code == 200
    server.get("/api/v1/audit/events/1/proof", roles=["revisor"])
    searches = server.events(kind="audit_search")
    # the two reads, and the two searches made to count them
    assert len(searches) == before + 3
    assert {"verify", "proof_of"} <= {k for e in searches for k in e["data"]["filters"]}


def test_consent_searches_count_against_the_rate_limit(
    store_url: str, tmp_path: Path, sample: Path
) -> None:
    for limited in start(store_url, tmp_path, sample, lookups_per_minute=2):
        answers = [limited.post("/api/v1/consents/search", {"ident": LUND}) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert limited.post("/api/v1/personkort", {"ident": LUND}).status_code == 429


def test_an_unexpected_field_is_not_echoed_and_nul_is_a_client_error(server: Server) -> None:
    echoed = server.post("/api/v1/personkort", {"ident": LUND, LUND: 1})
    assert echoed.status_code == 422 and LUND not in echoed.text
    nul = server.post("/api/v1/consents/search", {"ident": LUND, "purpose": "a\u0000b"})
    assert nul.status_code == 400
