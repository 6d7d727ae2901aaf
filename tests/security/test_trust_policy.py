"""The policy spec's rules that issue 10 found broken, on the pure engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from personkort.card import Card, Source, Sourced
from personkort.policy.engine import Caseworker, Consent, evaluate
from personkort.policy.load import load_policy
from personkort.purpose import clean_purpose
from tests.policy_fixtures import IDENT, NOW, VALUES, full_card, services

POLICY = load_policy()
STATE = Caseworker("Z1", "stat", "nav-valdres", frozenset({"veileder"}))
RELATIVE = "01017012345"  # the number a hand-typed municipal record carries


def sosial(person_ident: str | None) -> Consent:
    return Consent(
        "sosial", "nav-valdres", dt.date(2026, 1, 1), dt.date(2026, 12, 31), None, person_ident
    )


def test_a_consent_counts_only_under_a_verified_number_of_the_card() -> None:
    card = full_card()
    sosio = next(s for s in card.sources if s.register == "kommune")
    card.idents.append(Sourced(RELATIVE, sosio))  # on the card only through a municipal record
    assert RELATIVE in card.all_idents and RELATIVE not in card.verified_idents
    amount = str(VALUES["oksos_amount"])
    mine = json.dumps(evaluate(STATE, card, [sosial(IDENT)], POLICY, now=NOW).view)
    theirs = json.dumps(evaluate(STATE, card, [sosial(RELATIVE)], POLICY, now=NOW).view)
    assert amount in mine
    assert amount not in theirs
    assert json.dumps(evaluate(STATE, card, [sosial(None)], POLICY, now=NOW).view) == theirs


def test_rus_is_absent_with_no_marker_off_the_owners_side() -> None:
    lillestrom = Caseworker("Z1", "stat", "nav-lillestrom", frozenset({"veileder"}))
    card = full_card(owner="3205")
    decision = evaluate(lillestrom, card, [], POLICY, now=NOW)
    body = json.dumps(decision.view, ensure_ascii=False)
    assert "RUS" not in body and "rusopplysninger" not in body and "substance" not in body
    assert not any(w.rule == "substance_abuse" for w in decision.withheld)
    owner = Caseworker("K1", "kommune:3205", "nav-lillestrom", frozenset({"veileder"}))
    shown = json.dumps(evaluate(owner, card, [], POLICY, now=NOW).view, ensure_ascii=False)
    assert VALUES["rus_text"] in shown


def test_a_card_with_nothing_for_this_caseworker_is_absent() -> None:
    """A person known only from another municipality's RUS record."""
    src = Source("kommune", "sosio:3205:9", "sosio_3205:line:9", 1)
    rus = next(s for s in services("3205") if s.service == "RUS")
    card = Card("pk-00000000000000a1", 1, None, False, False)
    card.sources = [src]
    card.idents = [Sourced(RELATIVE, src)]
    card.names = [Sourced("Ola Nordmann", src)]
    card.municipal_services = [dataclasses.replace(rus, source=src)]
    lillestrom = Caseworker("Z1", "stat", "nav-lillestrom", frozenset({"veileder"}))
    decision = evaluate(lillestrom, card, [], POLICY, now=NOW)
    assert decision.permitted and decision.absent
    owner = Caseworker("K1", "kommune:3205", "nav-lillestrom", frozenset({"veileder"}))
    assert not evaluate(owner, card, [], POLICY, now=NOW).absent
    assert not evaluate(STATE, full_card(), [], POLICY, now=NOW).absent


def test_invisible_text_is_no_purpose() -> None:
    for blank in ("", "   ", "\u200b\u200b\u200b", "\u2028\u2029", "\x00\x01\x02", "\u00ad" * 5):
        assert clean_purpose(blank) is None
    assert clean_purpose("  oppfølging\u200b av  vedtak ") == "oppfølging av vedtak"
    worker = Caseworker("Z1", "stat", "nav-oslo", frozenset({"veileder", "kode6"}))
    card = full_card(protection="STRENGT_FORTROLIG")
    denied = evaluate(worker, card, [], POLICY, purpose="\u200b\u200b\u200b", now=NOW)
    assert denied.reason_codes == ["formal_mangler"]
