"""A person's access report (GDPR art. 15) over the JSON API, on SQLite and PostgreSQL: every
lookup of the card by any of its numbers, by office, employer and role (never the caseworker),
what was withheld and on which basis; itself audited. And the auditors' CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from api.settings import Settings
from personkort.nightly import run_night
from personkort.services.audit_queries import AuditQueryService
from personkort.store import open_engine
from tests.api_server import serve
from tests.test_api import Api

TRUTH = "night1/truth/persons.csv"


def persons(sample: Path) -> list[dict[str, str]]:
    with (sample / TRUTH).open(encoding="utf-8", newline="") as f:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(f)]


def plain(row: dict[str, str]) -> bool:
    return not row["adressebeskyttelse"] and row["skjermet"] == "0" and not row["dodsdato"]


@pytest.fixture
def api(store_url: str, tmp_path: Path, sample: Path) -> Iterator[Api]:
    from adapters import read_drop
    from adapters.drop import fingerprint

    settings = Settings(store_url=store_url, data_dir=str(tmp_path / "data"))
    engine = open_engine(store_url)
    drop = sample / "night1"
    run_night(engine, read_drop(drop), drop_dir=str(drop), fingerprint=fingerprint(drop))
    with serve(create_app(settings)) as url:
        yield Api(url, settings, engine)
    engine.dispose()


def test_report_lists_each_lookup_by_office_and_basis(api: Api, sample: Path) -> None:
    # An Oslo resident with a municipal record and a state benefit: both sides see something.
    person = next(
        p["fnr"]
        for p in persons(sample)
        if plain(p) and p["fnr"] and p["kommunenr"] == "0301" and p["in_kommune"] == "1"
    )
    state = {"sub": "Z100001", "office": "nav-oslo", "employer": "stat"}
    municipal = {"sub": "K030101", "office": "nav-oslo", "employer": "kommune:0301"}
    first = api.post("/api/v1/personkort", {"ident": person}, **state).json()
    second = api.post("/api/v1/personkort", {"ident": person}, **municipal).json()
    today = dt.date.today()
    consent = api.post(
        "/api/v1/consents",
        {
            "ident": person,
            "scope": "sosial",
            "valid_from": today.isoformat(),
            "valid_to": (today + dt.timedelta(days=90)).isoformat(),
            "form_reference": "skjema-41",
        },
        **state,
    )
    assert consent.status_code == 201, consent.text
    third = api.post("/api/v1/personkort", {"ident": person}, **state).json()
    lookups = [first, second, third]

    assert api.post("/api/v1/audit/access-report", {"ident": person}).status_code == 403
    typed = f"{person[:6]} {person[6:]}"  # any shape
    response = api.post("/api/v1/audit/access-report", {"ident": typed}, roles=["revisor"])
    assert response.status_code == 200, response.text
    report = response.json()
    rows = report["rows"]
    assert [r["trace_id"] for r in rows] == [c["trace_id"] for c in lookups]
    assert [r["employer"] for r in rows] == ["stat", "kommune:0301", "stat"]
    assert {r["office"] for r in rows} == {"nav-oslo"}
    assert all("veileder" in r["roles"] for r in rows)
    assert all(r["kind"] == "lookup" for r in rows)
    for row, card in zip(rows, lookups, strict=True):
        assert row["policy_version"] == card["policy_version"]
        assert row["outcome"] == ("partial" if card["withheld"] else "permit")
        assert sorted((w["field"], w["rule"]) for w in row["withheld"]) == sorted(
            (w["field"], w["rule"]) for w in card["withheld"]
        )
    assert rows[0]["withheld"] != rows[1]["withheld"]  # state and municipal see differently
    assert [r["consents_in_force"] for r in rows] == [[], [], ["sosial"]]
    assert [(c["kind"], c["scope"], c["form_reference"]) for c in report["consents"]] == [
        ("consent_registered", "sosial", "skjema-41")
    ]
    assert report["card_ids"] == [first["card_id"]]
    text = json.dumps(report)
    assert "Z100001" not in text and "K030101" not in text  # the office, not the caseworker
    assert person not in text

    # The report is itself an auditor's search by person, findable by the number.
    seen = api.post(
        "/api/v1/audit/events", {"ident": person, "kind": "audit_search"}, roles=["revisor"]
    ).json()
    assert [e["data"]["filters"] for e in seen][:1] == [{"access_report": True}]
    assert seen[0]["data"]["by_person"] is True
    assert all(person not in json.dumps(e) for e in seen)


def test_report_finds_lookups_by_an_earlier_number(api: Api, sample: Path) -> None:
    both = next(p for p in persons(sample) if plain(p) and p["fnr"] and p["dnr"])
    looked = api.post("/api/v1/personkort", {"ident": both["dnr"]})
    assert looked.status_code == 200, looked.text
    report = api.post(
        "/api/v1/audit/access-report", {"ident": both["fnr"]}, roles=["revisor"]
    ).json()
    assert [r["trace_id"] for r in report["rows"]] == [looked.json()["trace_id"]]


def test_report_refuses_what_is_not_a_number(api: Api) -> None:
    bad = api.post("/api/v1/audit/access-report", {"ident": "12345"}, roles=["revisor"])
    assert bad.status_code == 422
    extra = api.post(
        "/api/v1/audit/access-report", {"ident": "12345678901", "x": 1}, roles=["revisor"]
    )
    assert extra.status_code == 422
    none = api.post("/api/v1/audit/access-report", {"ident": "01010112345"}, roles=["revisor"])
    assert none.status_code == 200 and none.json()["rows"] == []


def test_csv_export_quotes_formulas_and_names_no_number(api: Api) -> None:
    api.post("/api/v1/personkort", {"ident": "01010112345"})
    found = api.post("/api/v1/audit/events", {"format": "csv", "kind": "lookup"}, roles=["revisor"])
    assert found.status_code == 200 and found.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(found.text)))
    assert rows[0][0] == "hendelse_nr" and len(rows) == 2
    assert rows[1][8] == "not_found" and "01010112345" not in found.text
    event = {
        "seq": 7,
        "kind": "lookup",
        "at": "2026-03-01T13:05:00.000000Z",
        "data": {
            "caseworker": {"sub": "@SUM(A1)", "office": "+nav", "employer": "stat"},
            "decision": "permit",
            "purpose": '=HYPERLINK("http://x")',
            "trace_id": "-abc",
        },
    }
    cells = list(csv.reader(io.StringIO(AuditQueryService.csv([event]))))[1]
    assert cells[1] == "2026-03-01 14:05:00"  # Oslo time (CET in March)
    assert cells[4] == "'@SUM(A1)" and cells[5] == "'+nav"
    assert cells[12] == '\'=HYPERLINK("http://x")' and cells[14] == "'-abc"


def test_the_pages_period_is_whole_days_in_oslo_time() -> None:
    from personkort.services import ServiceError
    from web.routes_audit import search_of

    wanted, typed = search_of(
        {"fra": "2026-07-01", "til": "2026-07-01", "saksbehandler": " Z100001 ", "avslag": "1"}, 10
    )
    assert (wanted.since, wanted.until) == (
        "2026-06-30T22:00:00.000000Z",  # CEST: midnight in Oslo is 22:00 UTC the day before
        "2026-07-01T22:00:00.000000Z",
    )
    assert wanted.caseworker == "Z100001" and wanted.decision == "deny" and wanted.ident is None
    assert typed["saksbehandler"] == "Z100001"
    assert search_of({"ident": "279053.40064"}, 10)[0].ident == "27905340064"
    for bad in (
        {"ident": "2790534006"},
        {"fra": "1. mars"},
        {"fra": "2026-03-02", "til": "2026-03-01"},
    ):
        with pytest.raises(ServiceError):
            search_of(bad, 10)
