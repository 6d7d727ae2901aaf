"""The whole matrix of the policy spec: employer × office × consent × protection × field class.

The expected outcome of each cell comes from ``expected()``, a direct transcription of the table
in shared/spec/policy.md, independent of the engine's grant machinery; a few cells are also
spelled out by hand below it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from personkort.policy.engine import Caseworker, Consent, evaluate
from personkort.policy.load import load_policy
from tests.policy_fixtures import IDENT, NOW, VALUES, full_card

POLICY = load_policy()

WORKERS = {
    "stat@valdres": Caseworker("Z1", "stat", "nav-valdres", frozenset({"veileder"})),
    "host3451@valdres": Caseworker("k1", "kommune:3451", "nav-valdres", frozenset({"veileder"})),
    "owner3449@valdres": Caseworker("k2", "kommune:3449", "nav-valdres", frozenset({"veileder"})),
    "other3450@valdres": Caseworker("k3", "kommune:3450", "nav-valdres", frozenset({"veileder"})),
    "oslo0301@oslo": Caseworker("k4", "kommune:0301", "nav-oslo", frozenset({"veileder"})),
    "trondheim5001@lerkendal": Caseworker(
        "k5", "kommune:5001", "nav-lerkendal", frozenset({"veileder"})
    ),
    "stat@lerkendal": Caseworker("Z2", "stat", "nav-lerkendal", frozenset({"veileder"})),
    "stat-kode7@valdres": Caseworker("Z3", "stat", "nav-valdres", frozenset({"veileder", "kode7"})),
}
CONSENTS = {
    "none": set(),
    "okonomi": {"okonomi"},
    "helse": {"helse"},
    "sosial": {"sosial"},
    "all": {"okonomi", "helse", "sosial"},
}
# (probe, class, owner, service) — owner/service only for municipal data
PROBES = {
    "address": ("contact", None, None),
    "phone": ("contact", None, None),
    "dagp_rate": ("state_benefit_amounts", None, None),
    "dagp_text": ("state_benefit_amounts", None, None),
    "sp_amount": ("state_benefit_amounts", None, None),
    "aap_text": ("health", None, None),
    "sp_diagnosis": ("health", None, None),
    "sh_amount": ("municipal_service", "5001", "OKSOS"),
    "oksos_amount": ("municipal_service", "3449", "OKSOS"),
    "oksos_text": ("municipal_free_text", "3449", "OKSOS"),
    "kvp_text": ("municipal_free_text", "3449", "KVP"),
    "bolig_text": ("municipal_free_text", "3449", "BOLIG"),
    "gjeld_text": ("municipal_free_text", "3449", "GJELD"),
    "rus_text": ("substance_abuse", "3449", "RUS"),
}
OFFICE_SERVICES = {
    "nav-valdres": {"OKSOS", "KVP", "GJELD"},
    "nav-oslo": {"OKSOS", "KVP", "BOLIG", "GJELD"},
    "nav-lerkendal": {"OKSOS"},
}
OFFICE_AREA = {"nav-valdres": ("3451", {"3449", "3450", "3451", "3452", "3453", "3454"})}


def owner_side(worker: Caseworker, owner: str) -> bool:
    mine = worker.municipality
    if mine is None:
        return False
    host, area = OFFICE_AREA.get(worker.office, (mine, {mine}))
    return mine == owner or (mine == host and owner in area)


def expected(probe: str, worker: Caseworker, scopes: set[str], protection: str | None) -> str:
    """shown | withheld | absent, straight from the spec's table."""
    cls, owner, service = PROBES[probe]
    stat = worker.employer == "stat"
    if cls == "contact":
        if protection == "FORTROLIG" and not worker.roles & {"kode7", "kode6"}:
            return "withheld"
        return "shown"
    if cls == "state_benefit_amounts":
        return "shown" if stat or "okonomi" in scopes else "withheld"
    if cls == "health":
        return "shown" if stat or "helse" in scopes else "withheld"
    assert owner and service
    if service not in OFFICE_SERVICES[worker.office]:
        return "absent"
    mine = owner_side(worker, owner)
    if cls == "substance_abuse":
        return "shown" if mine else "absent"  # that RUS exists is itself the secret
    line_visible = mine or "sosial" in scopes
    if cls == "municipal_service":
        return "shown" if line_visible else "withheld"
    return "shown" if mine else "withheld"  # free text: owner's side only, no consent opens it


def consents(scopes: set[str], office: str) -> list[Consent]:
    start, end = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    return [Consent(s, office, start, end, person_ident=IDENT) for s in sorted(scopes)]


CELLS = list(itertools.product(WORKERS, CONSENTS, [None, "FORTROLIG"]))


@pytest.mark.parametrize(("worker_name", "consent_name", "protection"), CELLS)
def test_policy_matrix(worker_name: str, consent_name: str, protection: str | None) -> None:
    worker = WORKERS[worker_name]
    scopes = CONSENTS[consent_name]
    card = full_card(protection=protection)
    decision = evaluate(worker, card, consents(scopes, worker.office), POLICY, now=NOW)
    assert decision.permitted
    assert decision.policy_version == POLICY.version
    body = json.dumps(decision.view, ensure_ascii=False)
    withheld_rules = {w.rule for w in decision.withheld}
    for probe in PROBES:
        want = expected(probe, worker, scopes, protection)
        text = str(VALUES[probe])
        if want == "shown":
            assert text in body, (probe, want)
        else:
            assert text not in body, (probe, want)
        if want == "withheld":
            assert withheld_rules & {PROBES[probe][0], "municipal_service"}, probe
    # Services outside the agreement leave no trace, not even their code.
    for service in {"OKSOS", "KVP", "BOLIG", "RUS", "GJELD"} - OFFICE_SERVICES[worker.office]:
        assert f'"service": "{service}"' not in body
    lines = decision.view["municipal_services"]  # type: ignore[index]
    assert len(lines) == sum(
        1
        for s in card.municipal_services
        if s.service in OFFICE_SERVICES[worker.office]
        and (s.service != "RUS" or owner_side(worker, s.owner_kommune))
    )
    if not any(owner_side(worker, s.owner_kommune) for s in card.municipal_services):
        assert "RUS" not in body and "rusopplysninger" not in body  # not even a marker


def test_withheld_is_distinguishable_from_empty_and_names_the_consent() -> None:
    worker = WORKERS["other3450@valdres"]
    decision = evaluate(worker, full_card(), [], POLICY, now=NOW)
    view = decision.view
    assert view is not None
    amount = view["state_benefits"][0]["daily_rate"]
    assert amount == {
        "withheld": True,
        "reason": "statlig_taushetsplikt",
        "rule": "state_benefit_amounts",
        "consent": "okonomi",
    }
    assert view["state_benefits"][0]["monthly_amount"] is None  # empty, not withheld
    line = view["municipal_services"][0]
    assert line["consent"] == "sosial" and line["reason"] == "kommunal_taushetsplikt"
    free_text = [w for w in decision.withheld if w.rule == "municipal_free_text"]
    assert all(w.consent is None for w in free_text)


def test_sh_rows_belong_to_their_municipality() -> None:
    owner = WORKERS["trondheim5001@lerkendal"]
    stat = WORKERS["stat@lerkendal"]
    mine = evaluate(owner, full_card(), [], POLICY, now=NOW).view
    theirs = evaluate(stat, full_card(), [], POLICY, now=NOW).view
    assert str(VALUES["sh_amount"]) in json.dumps(mine)
    assert str(VALUES["sh_amount"]) not in json.dumps(theirs)


def test_vertskommune_host_is_on_the_owners_side_for_the_whole_area() -> None:
    host = evaluate(WORKERS["host3451@valdres"], full_card(), [], POLICY, now=NOW).view
    other = evaluate(WORKERS["other3450@valdres"], full_card(), [], POLICY, now=NOW).view
    assert VALUES["oksos_text"] in json.dumps(host, ensure_ascii=False)
    assert VALUES["oksos_text"] not in json.dumps(other, ensure_ascii=False)


@pytest.mark.parametrize(
    ("consent", "opens"),
    [
        (
            Consent(
                "okonomi",
                "nav-valdres",
                dt.date(2026, 1, 1),
                dt.date(2026, 12, 31),
                person_ident=IDENT,
            ),
            True,
        ),
        (
            Consent(
                "okonomi",
                "nav-valdres",
                dt.date(2025, 1, 1),
                dt.date(2025, 12, 31),
                person_ident=IDENT,
            ),
            False,
        ),
        (
            Consent(
                "okonomi",
                "nav-valdres",
                dt.date(2026, 12, 1),
                dt.date(2027, 11, 30),
                person_ident=IDENT,
            ),
            False,
        ),
        (
            Consent(
                "okonomi",
                "nav-valdres",
                dt.date(2026, 1, 1),
                dt.date(2026, 12, 31),
                withdrawn_at=NOW - dt.timedelta(minutes=1),
                person_ident=IDENT,
            ),
            False,
        ),
        (
            Consent(
                "okonomi",
                "nav-oslo",
                dt.date(2026, 1, 1),
                dt.date(2026, 12, 31),
                person_ident=IDENT,
            ),
            False,
        ),
    ],
    ids=["in-force", "expired", "not-yet", "withdrawn", "other-office"],
)
def test_consent_in_force_only(consent: Consent, opens: bool) -> None:
    worker = WORKERS["other3450@valdres"]
    body = json.dumps(evaluate(worker, full_card(), [consent], POLICY, now=NOW).view)
    assert (str(VALUES["dagp_rate"]) in body) is opens


GATE = [
    # roles, protection, skjermet, pid, purpose, permitted, code
    (set(), None, False, None, None, False, "mangler_rolle"),
    ({"veileder"}, "STRENGT_FORTROLIG", False, None, None, False, "strengt_fortrolig_adresse"),
    ({"veileder", "kode6"}, "STRENGT_FORTROLIG", False, None, None, False, "formal_mangler"),
    ({"veileder", "kode6"}, "STRENGT_FORTROLIG", False, None, "oppfølging", True, None),
    (
        {"veileder", "kode7"},
        "STRENGT_FORTROLIG",
        False,
        None,
        "x",
        False,
        "strengt_fortrolig_adresse",
    ),
    ({"veileder"}, "FORTROLIG", False, None, None, True, None),
    ({"veileder"}, None, True, None, None, False, "skjermet_person"),
    ({"veileder", "skjermet"}, None, True, None, "sak", True, None),
    ({"veileder", "skjermet", "kode6"}, None, False, IDENT, "oppfølging", False, "egne_data"),
    (
        {"veileder", "kode6"},
        "STRENGT_FORTROLIG",
        True,
        None,
        "oppfølging",
        False,
        "skjermet_person",
    ),
]


@pytest.mark.parametrize(("roles", "protection", "skjermet", "pid", "purpose", "ok", "code"), GATE)
def test_gate(
    roles: set[str],
    protection: str | None,
    skjermet: bool,
    pid: str | None,
    purpose: str | None,
    ok: bool,
    code: str | None,
) -> None:
    worker = Caseworker("Z9", "stat", "nav-valdres", frozenset(roles), pid)
    card = full_card(protection=protection, skjermet=skjermet)
    decision = evaluate(worker, card, [], POLICY, purpose=purpose, now=NOW)
    assert decision.permitted is ok
    if not ok:
        assert decision.reason_codes == [code]
        assert decision.view is None
        assert decision.message
    else:
        assert bool(decision.privileged_use) is bool(protection == "STRENGT_FORTROLIG" or skjermet)


def test_unknown_office_is_denied() -> None:
    worker = Caseworker("Z9", "stat", "nav-atlantis", frozenset({"veileder"}))
    assert not evaluate(worker, full_card(), [], POLICY, now=NOW).permitted


def test_municipal_record_values_are_hidden_when_none_of_its_services_is_shown() -> None:
    stat = evaluate(WORKERS["stat@valdres"], full_card(), [], POLICY, now=NOW)
    owner = evaluate(WORKERS["owner3449@valdres"], full_card(), [], POLICY, now=NOW)
    assert "Nordmann-Sosio" not in json.dumps(stat.view)
    assert "sosio_3449" not in json.dumps(stat.view)
    assert "Nordmann-Sosio" in json.dumps(owner.view)
