"""The simulator's Folkeregister feed: the snapshot and the events in the spec's format, the
answer keys (relatives, feed protection, the day's expected effects) true of what was written,
deterministic, and the registers' files untouched by it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personkort.ident import make_ident
from simulator import simulate
from simulator.feed import Feed
from tests.conftest import SAMPLE, read_csv

RECORD_KEYS = [
    "folkeregisteridentifikator",
    "navn",
    "foedselsdato",
    "adressebeskyttelse",
    "doedsdato",
    "forelderBarnRelasjon",
    "sivilstand",
    "sistEndret",
]
GRADERING = {"UGRADERT", "FORTROLIG", "STRENGT_FORTROLIG", "STRENGT_FORTROLIG_UTLAND"}
RANK = {"": 0, "UGRADERT": 0, "FORTROLIG": 1, "STRENGT_FORTROLIG": 2}
SIVILSTAND = {"UGIFT", "GIFT", "REGISTRERT_PARTNER", "SEPARERT", "SKILT", "ENKE_ELLER_ENKEMANN"}
WITH_PARTNER = {"GIFT", "REGISTRERT_PARTNER", "SEPARERT"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feed")
    simulate(6_000, 5, 2, out)
    return out


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nofeed")
    simulate(6_000, 5, 2, out, feed=False)
    return out


def _snapshot_path(night: Path) -> Path:
    (path,) = (night / "folkeregister").glob("folkeregister_*.jsonl")
    return path


def _bad_lines(night: Path) -> set[int]:
    return {
        int(r["location"].rsplit(":", 1)[1])
        for r in read_csv(night / "truth" / "bad.csv")
        if r["register"] == "folkeregister"
    }


def _records(night: Path) -> list[dict[str, Any]]:
    bad = _bad_lines(night)
    lines = _snapshot_path(night).read_text(encoding="utf-8").splitlines()
    out = []
    for n, line in enumerate(lines, start=1):
        if n in bad:
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
            continue
        out.append(json.loads(line))
    return out


def _in_use(record: dict[str, Any]) -> str:
    (number,) = [
        i["identifikasjonsnummer"]
        for i in record["folkeregisteridentifikator"]
        if i["status"] == "I_BRUK"
    ]
    return number


class Kinship:
    """The relations a snapshot states, read from both ends, numbers mapped to persons."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.canonical: dict[str, str] = {}
        for r in records:
            for i in r["folkeregisteridentifikator"]:
                self.canonical[i["identifikasjonsnummer"]] = _in_use(r)
        self.parents: dict[str, set[str]] = {}
        self.children: dict[str, set[str]] = {}
        self.partners: dict[str, set[str]] = {}
        for r in records:
            me = _in_use(r)
            for rel in r["forelderBarnRelasjon"]:
                other = self.key(rel["relatertPersonsIdent"])
                if rel["relatertPersonsRolle"] == "BARN":
                    self._add(self.children, me, other)
                    self._add(self.parents, other, me)
                else:
                    self._add(self.parents, me, other)
                    self._add(self.children, other, me)
            for s in r["sivilstand"]:
                if s["type"] in WITH_PARTNER:
                    other = self.key(s["relatertVedSivilstand"])
                    self._add(self.partners, me, other)
                    self._add(self.partners, other, me)

    def key(self, number: str) -> str:
        return self.canonical.get(number, number)

    @staticmethod
    def _add(table: dict[str, set[str]], a: str, b: str) -> None:
        table.setdefault(a, set()).add(b)

    def relation(self, a: str, b: str) -> str | None:
        """What ``a`` is to ``b``, the first that holds in the gate's order."""
        a, b = self.key(a), self.key(b)
        if a == b:
            return None
        if a in self.parents.get(b, ()):
            return "parent"
        if a in self.children.get(b, ()):
            return "child"
        if self.parents.get(a, set()) & self.parents.get(b, set()):
            return "sibling"
        if a in self.partners.get(b, ()):
            return "partner"
        if self.children.get(a, set()) & self.children.get(b, set()):
            return "coparent"
        return None


def _numbers(night: Path) -> dict[str, str]:
    """person_key -> the number in use, from the answer key."""
    return {
        r["person_key"]: r["fnr"] or r["dnr"] for r in read_csv(night / "truth" / "persons.csv")
    }


@pytest.fixture(scope="module", params=["night1", "night2"])
def night(request: pytest.FixtureRequest, sim: Path) -> Path:
    return sim / request.param


def test_snapshot_lines_have_the_spec_shape(night: Path) -> None:
    day = _snapshot_path(night).stem.split("_")[1]
    stamp_day = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    kinds = Counter()
    for r in _records(night):
        assert list(r) == RECORD_KEYS
        assert list(r["navn"]) == ["fornavn", "mellomnavn", "etternavn"]
        ids = r["folkeregisteridentifikator"]
        statuses = [i["status"] for i in ids]
        assert statuses.count("I_BRUK") == 1
        assert all(len(i["identifikasjonsnummer"]) == 11 for i in ids)
        kinds[tuple((i["type"], i["status"]) for i in ids)] += 1
        assert r["adressebeskyttelse"] in GRADERING
        assert r["sistEndret"] == f"{stamp_day}T01:10:00+01:00"
        for rel in r["forelderBarnRelasjon"]:
            assert rel["relatertPersonsRolle"] in {"MOR", "FAR", "MEDMOR", "BARN"}
        (civil,) = r["sivilstand"]
        assert civil["type"] in SIVILSTAND
        assert (civil["relatertVedSivilstand"] is not None) == (civil["type"] in WITH_PARTNER)
    assert set(kinds) == {
        (("FNR", "I_BRUK"),),
        (("DNR", "I_BRUK"),),
        (("DNR", "OPPHOERT"), ("FNR", "I_BRUK")),
    }


def test_snapshot_holds_every_person_and_people_in_no_register(night: Path) -> None:
    records = _records(night)
    held = {i["identifikasjonsnummer"]: r for r in records for i in r["folkeregisteridentifikator"]}
    persons = read_csv(night / "truth" / "persons.csv")
    bad = len(_bad_lines(night))
    missing = [p for p in persons if (p["fnr"] or p["dnr"]) not in held]
    assert len(missing) <= bad  # only the lines cut short
    for p in persons:
        record = held.get(p["fnr"] or p["dnr"])
        if record is None:
            continue
        assert _in_use(record) == (p["fnr"] or p["dnr"])
        assert record["foedselsdato"] == p["fodselsdato"]
        assert record["navn"]["etternavn"] == p["etternavn"]
        if p["fnr"] and p["dnr"]:
            assert record["folkeregisteridentifikator"][0] == {
                "identifikasjonsnummer": p["dnr"],
                "type": "DNR",
                "status": "OPPHOERT",
            }
    known = {p["fnr"] or p["dnr"] for p in persons}
    feed_only = [r for r in records if _in_use(r) not in known]
    assert len(feed_only) > len(persons) // 10  # parents, partners, children elsewhere
    nowhere = [p for p in persons if p["in_arena"] == p["in_infotrygd"] == p["in_kommune"] == "0"]
    assert nowhere  # people in no register are in the feed too


def test_relations_are_stated_both_ways_and_some_point_outside(night: Path) -> None:
    records = _records(night)
    by_number = {_in_use(r): r for r in records}
    dangling = 0
    both_ways = 0
    roles = Counter()
    for r in records:
        me = _in_use(r)
        for rel in r["forelderBarnRelasjon"]:
            roles[rel["relatertPersonsRolle"]] += 1
            other = by_number.get(rel["relatertPersonsIdent"])
            if other is None:
                dangling += 1
                continue
            back = {
                x["relatertPersonsIdent"]: x["relatertPersonsRolle"]
                for x in other["forelderBarnRelasjon"]
            }
            if rel["relatertPersonsRolle"] == "BARN":
                assert back.get(me) in {"MOR", "FAR", "MEDMOR"}
            else:
                assert back.get(me) == "BARN"
            both_ways += 1
        (civil,) = r["sivilstand"]
        if civil["type"] in WITH_PARTNER and civil["relatertVedSivilstand"] in by_number:
            (theirs,) = by_number[civil["relatertVedSivilstand"]]["sivilstand"]
            assert theirs["relatertVedSivilstand"] == me or theirs["type"] == "ENKE_ELLER_ENKEMANN"
    assert dangling > 0 and both_ways > 1000
    assert roles["MOR"] and roles["FAR"] and roles["BARN"]
    civil = Counter(r["sivilstand"][0]["type"] for r in records)
    assert {"UGIFT", "GIFT", "REGISTRERT_PARTNER", "SEPARERT", "SKILT"} <= set(civil)


def test_relatives_rows_are_relations_the_snapshot_states(night: Path) -> None:
    records = _records(night)
    kin = Kinship(records)
    held = set(kin.canonical)
    numbers = _numbers(night)
    rows = read_csv(night / "truth" / "relatives.csv")
    assert {r["relation"] for r in rows} == {"parent", "child", "sibling", "partner", "coparent"}
    caseworkers = {r["caseworker_pid"] for r in rows}
    assert len(caseworkers) >= 10
    for pid in caseworkers:
        assert pid in held and kin.key(pid) == pid  # in the snapshot, a fødselsnummer in use
        assert int(pid[2]) >= 8  # synthetic (+80 on the month), not a D-nummer
    for r in rows:
        assert kin.relation(r["caseworker_pid"], numbers[r["person_key"]]) == r["relation"], r
    # complete: every population person a caseworker is related to is listed
    listed = {(r["caseworker_pid"], r["person_key"]) for r in rows}
    for pid in caseworkers:
        for key, number in numbers.items():
            if kin.relation(pid, number) is not None:
                assert (pid, key) in listed


def test_relatives_reading_matches_the_shared_sample() -> None:
    """The sample's relation is what the caseworker is to the person (the caseworker listed
    with ``parent`` is that person's parent); the simulator's key reads the same way."""
    night = SAMPLE / "night1"
    kin = Kinship(_records_of(_snapshot_path(night)))
    numbers = _numbers(night)
    for r in read_csv(night / "truth" / "relatives.csv"):
        assert kin.relation(r["caseworker_pid"], numbers[r["person_key"]]) == r["relation"]


def _records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_feed_protection_is_the_strictest_of_all_sources(night: Path) -> None:
    held = {_in_use(r): r["adressebeskyttelse"] for r in _records(night)}
    expected = {}
    stricter = equal = municipal_only = 0
    for p in read_csv(night / "truth" / "persons.csv"):
        feed = held.get(p["fnr"] or p["dnr"], "UGRADERT").replace("_UTLAND", "")
        registers = p["adressebeskyttelse"]
        best = max((feed, registers), key=RANK.__getitem__)
        if RANK[best]:
            expected[p["person_key"]] = best
        if RANK[feed] > RANK[registers]:
            stricter += 1
            if p["in_kommune"] == "1" and p["in_arena"] == p["in_infotrygd"] == "0":
                municipal_only += 1
        elif RANK[feed] and feed == registers:
            equal += 1
    rows = {
        r["person_key"]: r["gradering"] for r in read_csv(night / "truth" / "feed_protection.csv")
    }
    assert rows == expected
    assert stricter and equal and municipal_only


def _events(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(folder.glob("hendelser_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            yield path.name, json.loads(line)


def test_events_are_delivered_out_of_order_and_twice(sim: Path) -> None:
    folder = sim / "hendelser1"
    files = sorted(folder.glob("hendelser_*.jsonl"))
    assert len(files) == 3 and files[0].name == "hendelser_20261120T100000.jsonl"
    delivered = list(_events(folder))
    ids = Counter(e["hendelseId"] for _, e in delivered)
    assert sorted(ids.values())[-1] == 2 and list(ids.values()).count(2) == 1
    position = {e["hendelseId"]: n for n, (_, e) in reversed(list(enumerate(delivered)))}
    changes = Counter(e["endringstype"] for _, e in delivered)
    assert changes["KORRIGERT"] == 2 and changes["ANNULLERT"] == 1
    fixes = [e for _, e in delivered if e["tidligereHendelseId"]]
    assert any(position[e["hendelseId"]] < position[e["tidligereHendelseId"]] for e in fixes)
    times = [e["opprettet"] for _, e in delivered]
    assert times != sorted(times)
    for _, e in delivered:
        assert e["opprettet"].startswith("2026-11-20T") and e["opprettet"].endswith("+01:00")
        field = {"ADRESSEBESKYTTELSE_V1": "adressebeskyttelse", "DOEDSFALL_V1": "doedsfall"}
        assert list(e)[-1] == field[e["opplysningstype"]]


def _apply(delivered: list[dict[str, Any]]) -> dict[str, str]:
    """The spec's reading, in any order: first number -> the final gradering or death."""
    by_id = {e["hendelseId"]: e for e in delivered}
    replaced = {e["tidligereHendelseId"] for e in by_id.values() if e["tidligereHendelseId"]}
    state: dict[str, str] = {}
    for e in by_id.values():
        if e["hendelseId"] in replaced or e["endringstype"] == "ANNULLERT":
            continue
        who = e["personidenter"][0]
        if e["opplysningstype"] == "DOEDSFALL_V1":
            state[who] = f"died {e['doedsfall']['doedsdato']}"
        else:
            state[who] = e["adressebeskyttelse"]["gradering"]
    return state


def test_expected_matches_the_events_and_the_next_night(sim: Path) -> None:
    delivered = [e for _, e in _events(sim / "hendelser1")]
    state = _apply(delivered)
    numbers = _numbers(sim / "night2")
    touched = {e["personidenter"][0] for e in delivered}
    expected = read_csv(sim / "hendelser1" / "expected.csv")
    assert {numbers[r["person_key"]] for r in expected} == touched
    effects = Counter(r["effect"].split()[0] for r in expected)
    assert effects["STRENGT_FORTROLIG"] and effects["FORTROLIG"] and effects["died"] >= 2
    assert effects["unchanged"] == 1
    night1 = {_in_use(r): r for r in _records(sim / "night1")}
    numbers_before = _numbers(sim / "night1")
    night2 = {_in_use(r): r for r in _records(sim / "night2")}
    registers2 = {p["person_key"]: p for p in read_csv(sim / "night2" / "truth" / "persons.csv")}
    for r in expected:
        number, effect = numbers[r["person_key"]], r["effect"]
        before, after = night1[numbers_before[r["person_key"]]], night2[number]
        if effect.startswith("died"):
            assert state[number] == effect
            assert before["doedsdato"] is None and after["doedsdato"] == effect.split()[1]
        elif effect == "unchanged (raise cancelled)":
            assert number not in state
            assert after["adressebeskyttelse"] == before["adressebeskyttelse"] == "UGRADERT"
        else:
            assert state[number] == effect
            assert before["adressebeskyttelse"] == "UGRADERT"
            assert after["adressebeskyttelse"] == effect  # the next snapshot says it
            assert registers2[r["person_key"]]["adressebeskyttelse"] == ""  # registers lack it
    lagging = [
        r
        for r in expected
        if r["effect"].startswith("died") and not registers2[r["person_key"]]["dodsdato"]
    ]
    assert lagging  # a death the registers do not know yet


def test_the_adapter_reads_everything_but_the_injected_quirks(sim: Path) -> None:
    from adapters.folkeregister import read_inbox_file, read_snapshot

    injected = 0
    for name in ("night1", "night2"):
        night = sim / name
        extract = read_snapshot(_snapshot_path(night))
        quarantined = {q.location for q in extract.quarantine}
        assert quarantined == {f"folkeregister:line:{n}" for n in _bad_lines(night)}
        injected += len(quarantined)
        assert extract.feed is not None and len(extract.feed.persons) == len(_records(night))
    assert injected  # the quirk occurs
    read = 0
    for path in sorted((sim / "hendelser1").glob("hendelser_*.jsonl")):
        batch = read_inbox_file(path)
        assert batch.quarantine == []
        read += len(batch.events)
    assert read == len(list(_events(sim / "hendelser1")))


def _digest(folder: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if path.suffix == ".sqlite":
            with sqlite3.connect(path) as db:
                tables = [
                    t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                rows = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
            digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        else:
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_same_seed_same_feed(tmp_path: Path) -> None:
    simulate(1_500, 3, 3, tmp_path / "a")
    simulate(1_500, 3, 3, tmp_path / "b")
    simulate(1_500, 4, 2, tmp_path / "c")
    a = _digest(tmp_path / "a")
    assert a == _digest(tmp_path / "b")
    assert any(k.startswith("hendelser2/") for k in a)
    c = _digest(tmp_path / "c")
    assert (
        a["night1/folkeregister/folkeregister_20261120.jsonl"]
        != c["night1/folkeregister/folkeregister_20261120.jsonl"]
    )


def test_the_registers_are_the_same_without_the_feed(sim: Path, plain: Path) -> None:
    """Register files and their answer key byte for byte (Arena table by table), bad.csv but
    for the feed's own lines; the feed only adds files."""
    with_feed, without = _digest(sim), _digest(plain)
    registers = {k for k in with_feed if k.split("/")[1] in {"arena", "infotrygd", "kommune"}}
    truth = {f"{n}/truth/{f}" for n in ("night1", "night2") for f in ("persons.csv", "links.csv")}
    assert registers and set(without) == registers | truth | {
        "night1/truth/bad.csv",
        "night2/truth/bad.csv",
    }
    for k in registers | truth:
        assert with_feed[k] == without[k], k
    for name in ("night1", "night2"):
        rows = read_csv(sim / name / "truth" / "bad.csv")
        assert [r for r in rows if r["register"] != "folkeregister"] == read_csv(
            plain / name / "truth" / "bad.csv"
        )
    added = set(with_feed) - set(without)
    assert "night2/truth/relatives.csv" in added and "hendelser1/expected.csv" in added


@pytest.mark.parametrize("persons", [1, 5, 60])
def test_tiny_populations_still_get_a_feed(tmp_path: Path, persons: int) -> None:
    simulate(persons, 1, 2, tmp_path)
    records = _records(tmp_path / "night2")
    assert len(records) >= persons
    expected = read_csv(tmp_path / "hendelser1" / "expected.csv")
    touched = {e["personidenter"][0] for _, e in _events(tmp_path / "hendelser1")}
    numbers = _numbers(tmp_path / "night2")
    assert {numbers[r["person_key"]] for r in expected} == touched


def test_a_birth_dates_feed_only_numbers_run_out_without_hanging() -> None:
    """A date has at most 50 feed-only numbers per gender; at two million persons the popular
    dates ran out and the draw looped for ever. Now the last is found and then None."""
    feed = Feed.__new__(Feed)  # only the number draw: no population needed
    feed.rng, feed.used = random.Random(7), set()
    born = dt.date(1970, 5, 17)
    drawn = []
    while (number := feed._number(born, "K")) is not None:
        drawn.append(number)
        assert len(drawn) <= 50
    assert drawn and len(set(drawn)) == len(drawn)
    assert all(make_ident(born, int(n[6:9]), synthetic=True) == n for n in drawn)
    valid = {make_ident(born, i, synthetic=True) for i in range(900, 1000, 2)} - {None}
    assert set(drawn) == valid  # every number of the date, each once
    assert feed._number(born, "K") is None
