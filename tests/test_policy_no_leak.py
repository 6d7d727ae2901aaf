"""No withheld or left-out value appears anywhere in the bytes of any response (property test)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from personkort.card import BenefitLine, Card, ServiceLine, Source, Sourced
from personkort.policy.engine import Caseworker, Consent, evaluate
from personkort.policy.load import load_policy
from tests.policy_fixtures import NOW

POLICY = load_policy()
OFFICES = sorted(POLICY.offices)
MUNICIPALITIES = sorted({k for o in POLICY.offices.values() for k in o.municipalities})
ROLES = ["veileder", "kode6", "kode7", "skjermet"]
ARENA_IDENT = "15928011418"


class Values:
    """Unique marker strings, so a leak is a substring match."""

    def __init__(self) -> None:
        self.n = 0

    def next(self, kind: str = "v") -> str:
        self.n += 1
        return f"{kind}{self.n:05d}Q"

    def amount(self) -> Decimal:
        self.n += 1
        return Decimal(f"{70000 + self.n}.{self.n % 97:02d}")


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Caseworker, Card, list[Consent]]:
    values = Values()
    employer = draw(st.sampled_from(["stat", *[f"kommune:{k}" for k in MUNICIPALITIES]]))
    office = draw(st.sampled_from(OFFICES))
    roles = frozenset(draw(st.sets(st.sampled_from(ROLES))) | {"veileder"})
    worker = Caseworker("Z1", employer, office, roles)
    protection = draw(st.sampled_from([None, None, "FORTROLIG", "STRENGT_FORTROLIG"]))
    arena = Source("arena", "1", "PERSON:1", 1)
    card = Card("pk-0000000000000001", 1, protection, draw(st.booleans()), False)
    card.sources = [arena]
    card.fields = {
        "address": [Sourced(values.next("adr"), arena)],
        "phone": [Sourced(values.next("tel"), arena)],
    }
    for _ in range(draw(st.integers(0, 3))):
        code = draw(st.sampled_from(["DAGP", "AAP", "TILTPENG", "SP", "UF", "AP"]))
        card.state_benefits.append(
            BenefitLine(
                "arena",
                code,
                "IVERK",
                dt.date(2025, 1, 1),
                None,
                values.amount(),
                values.amount(),
                100,
                values.next("dia"),
                values.next("txt"),
                arena,
            )
        )
    for _ in range(draw(st.integers(0, 5))):
        owner = draw(st.sampled_from(MUNICIPALITIES))
        src = Source("kommune", f"sosio:{owner}:1", f"sosio_{owner}:line:2", 1)
        card.sources.append(src)
        card.municipal_services.append(
            ServiceLine(
                "kommune",
                "sosio",
                owner,
                draw(st.sampled_from(["OKSOS", "KVP", "BOLIG", "RUS", "GJELD"])),
                dt.date(2025, 1, 1),
                None,
                values.amount(),
                values.next("sb"),
                values.next("fri"),
                src,
            )
        )
    scopes = draw(st.sets(st.sampled_from(["okonomi", "helse", "sosial"])))
    consent_office = draw(st.sampled_from([office, OFFICES[0]]))
    # A consent counts only under a verified number of the card; some are under another number.
    under = draw(st.sampled_from([ARENA_IDENT, "01010112345"]))
    card.idents = [Sourced(ARENA_IDENT, arena)]
    consents = [
        Consent(s, consent_office, dt.date(2026, 1, 1), dt.date(2026, 12, 31), None, under)
        for s in scopes
    ]
    return worker, card, consents


def owner_side(worker: Caseworker, owner: str) -> bool:
    mine = worker.municipality
    office = POLICY.offices[worker.office]
    return mine is not None and (
        mine == owner or (mine == office.host and owner in office.municipalities)
    )


def secret_values(
    card: Card, withheld_paths: list[str], included: frozenset[str], worker: Caseworker
) -> list[str]:
    """The values behind every withheld path, and every value of a left-out service (outside
    the agreement, or RUS off the owner's side)."""
    out: list[str] = []

    def left_out(s: ServiceLine) -> bool:
        return s.service not in included or (
            s.service == "RUS" and not owner_side(worker, s.owner_kommune)
        )

    lines = [s for s in card.municipal_services if not left_out(s)]
    shown_codes = {s.service for s in lines}
    for s in card.municipal_services:
        if left_out(s):
            out += [str(s.monthly_amount), s.free_text or ""]
            if s.service not in shown_codes:  # a code is no secret where a shown line has it
                out.append(f'"{s.service}"')
    for path in withheld_paths:
        if path.startswith("contact."):
            out += [str(v.value) for v in card.fields.get(path.split(".")[1], [])]
            continue
        match = re.fullmatch(r"(state_benefits|municipal_services)\[(\d+)\](?:\.(\w+))?", path)
        assert match, path
        table, index, name = match.group(1), int(match.group(2)), match.group(3)
        if table == "state_benefits":
            line = card.state_benefits[index]
            value = getattr(
                line, {"from": "from_date", "to": "to_date"}.get(name or "", name or "")
            )
            out.append(str(value))
        else:
            line = lines[index]
            if name == "free_text":
                out.append(line.free_text or "")
            else:
                out += [str(line.monthly_amount), line.free_text or "", line.caseworker or ""]
    return [v for v in out if v and v != "None"]


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_no_withheld_value_appears_in_the_response(
    case: tuple[Caseworker, Card, list[Consent]],
) -> None:
    worker, card, consents = case
    decision = evaluate(worker, card, consents, POLICY, purpose="test", now=NOW)
    body = json.dumps(decision.view or {"code": decision.reason_codes}, ensure_ascii=False)
    if not decision.permitted:
        for values in card.fields.values():
            assert all(str(v.value) not in body for v in values)
        return
    included = POLICY.offices[worker.office].services
    for secret in secret_values(card, [w.field for w in decision.withheld], included, worker):
        assert secret not in body, secret
