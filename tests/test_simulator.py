"""The register simulator: formats, determinism, the corruption model and the night changes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from simulator import CorruptionModel, simulate
from tests.conftest import read_csv


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(10_000, 2, 2, out)
    return out


def _digest(folder: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".sqlite":
            with sqlite3.connect(path) as db:
                tables = [
                    t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                rows = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
            digests[str(path.relative_to(folder))] = hashlib.sha256(repr(rows).encode()).hexdigest()
        elif path.is_file():
            digests[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_same_seed_same_files(tmp_path: Path) -> None:
    simulate(1_500, 3, 2, tmp_path / "a")
    simulate(1_500, 3, 2, tmp_path / "b")
    simulate(1_500, 4, 1, tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a" / "night1") != _digest(tmp_path / "c" / "night1")


def test_infotrygd_lines_and_trailer(sim: Path) -> None:
    (path,) = (sim / "night1" / "infotrygd").glob("infotrygd_*.dat")
    lines = path.read_bytes().decode("ascii").split("\n")[:-1]
    assert lines[0].startswith("HINFOTRYGD20261120")
    bad = {
        r["location"]
        for r in read_csv(sim / "night1" / "truth" / "bad.csv")
        if r["register"] == "infotrygd"
    }
    for n, line in enumerate(lines, start=1):
        if f"line:{n}" in bad and line[0] == "1":
            assert len(line) < 120
        else:
            assert len(line) == 120, n
    body = lines[1:-1]
    trailer = lines[-1]
    assert int(trailer[1:10]) == len(body)
    assert int(trailer[10:25]) == sum(int(x[36:47]) for x in body if x[0] == "2")
    assert not any(ch in line for line in body for ch in "ÆØÅæøå")  # NS 4551, 7-bit


def test_sosio_is_windows_1252_with_crlf(sim: Path) -> None:
    paths = sorted((sim / "night1" / "kommune").glob("sosio_*.csv"))
    assert paths
    data = b"".join(p.read_bytes() for p in paths)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    text = data.decode("cp1252")
    assert text.startswith("klientnr;fodselsnummer;")
    assert "Økonomisk sosialhjelp" in text
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_flyt_lines_are_json_except_the_broken_ones(sim: Path) -> None:
    bad = {r["location"] for r in read_csv(sim / "night1" / "truth" / "bad.csv")}
    for path in (sim / "night1" / "kommune").glob("flyt_*.jsonl"):
        kommune = path.name.split("_")[1]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if f"flyt_{kommune}:line:{n}" in bad:
                continue
            obj = json.loads(line)
            assert obj["kommunenr"] == kommune and "person" in obj


def test_every_bad_location_exists(sim: Path) -> None:
    for row in read_csv(sim / "night1" / "truth" / "bad.csv"):
        register, location = row["register"], row["location"]
        if register == "arena":
            table, key = location.split(":")
            column = {"PERSON": "PERSON_ID", "VEDTAK": "VEDTAK_ID"}[table]
            with sqlite3.connect(sim / "night1" / "arena" / "arena.sqlite") as db:
                assert db.execute(f"SELECT 1 FROM {table} WHERE {column}=?", (int(key),)).fetchone()
        elif register == "infotrygd":
            (path,) = (sim / "night1" / "infotrygd").glob("*.dat")
            assert int(location.split(":")[1]) <= len(path.read_bytes().split(b"\n"))
        elif register == "folkeregister":
            (path,) = (sim / "night1" / "folkeregister").glob("*.jsonl")
            assert int(location.split(":")[2]) <= len(path.read_bytes().split(b"\n"))
        else:
            source, _, n = location.split(":")
            (path,) = (sim / "night1" / "kommune").glob(f"{source}_*")
            assert int(n) <= len(path.read_bytes().split(b"\n"))


def test_every_quirk_occurs_at_ten_thousand_people(sim: Path) -> None:
    night = sim / "night1"
    kinds = Counter(
        r["kind"] for n in ("night1", "night2") for r in read_csv(sim / n / "truth" / "bad.csv")
    )
    for kind in (
        "invalid FODSELSDATO",
        "invalid FOM date",
        "truncated person record",
        "bad columns",
        "bad amount",
        "truncated json",
        "missing person",
        "invalid date",
        "orphan PERSON_ID",
    ):
        assert kinds[kind] > 0, kind
    persons = read_csv(night / "truth" / "persons.csv")
    markers = Counter(p["adressebeskyttelse"] for p in persons)
    assert markers["STRENGT_FORTROLIG"] and markers["FORTROLIG"]
    assert any(p["skjermet"] == "1" for p in persons)
    assert any(p["fnr"] and p["dnr"] for p in persons)  # D-nummer replaced by a fødselsnummer
    twins = Counter((p["etternavn"], p["adresse"], p["fodselsdato"]) for p in persons)
    assert max(twins.values()) >= 2
    namesakes = Counter((p["fornavn"], p["etternavn"], p["adresse"]) for p in persons)
    assert max(namesakes.values()) >= 2  # fathers and sons of one name
    with sqlite3.connect(night / "arena" / "arena.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM PERSON WHERE FODSELSNR IS NULL").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM PERSON_IDENT_HIST").fetchone()[0]
        assert db.execute("SELECT COUNT(*) FROM PERSON WHERE ER_EGEN_ANSATT='J'").fetchone()[0]
    text = "".join(p.read_bytes().decode("cp1252") for p in (night / "kommune").glob("sosio_*"))
    assert any(len(f.split(";")) > 1 and " " in f.split(";")[1] for f in text.splitlines())
    (info,) = (night / "infotrygd").glob("*.dat")
    lines = info.read_text(encoding="ascii").splitlines()
    assert any(line[:1] == "2" and line[12:14] == "SH" for line in lines)
    assert any(
        line[:1] == "1" and line[52:56] in {"1601", "1201", "1001", "3005"} for line in lines
    )


def test_second_night_changes_what_it_says(sim: Path) -> None:
    one = {p["person_key"]: p for p in read_csv(sim / "night1" / "truth" / "persons.csv")}
    two = {p["person_key"]: p for p in read_csv(sim / "night2" / "truth" / "persons.csv")}
    assert set(one) < set(two)  # newcomers
    moved = [k for k in one if one[k]["adresse"] != two[k]["adresse"]]
    died = [k for k in one if not one[k]["dodsdato"] and two[k]["dodsdato"]]
    got_fnr = [k for k in one if not one[k]["fnr"] and two[k]["fnr"]]
    protected = [k for k in one if one[k]["adressebeskyttelse"] != two[k]["adressebeskyttelse"]]
    assert moved and died and got_fnr and protected
    unchanged = [k for k in one if one[k] == two[k]]
    assert len(unchanged) / len(one) > 0.98


def test_corruption_rates_can_be_turned_up(tmp_path: Path) -> None:
    noisy = CorruptionModel(sosio_bad_amount=0.5, flyt_truncated=0.5)
    simulate(2_000, 5, 1, tmp_path, model=noisy)
    kinds = Counter(r["kind"] for r in read_csv(tmp_path / "night1" / "truth" / "bad.csv"))
    assert kinds["bad amount"] + kinds["truncated json"] > 20
