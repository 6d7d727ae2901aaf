"""Bad input gets a clear error and loses nothing: refusals, quarantine reasons, conservation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapters import RefusedSource, read_drop, read_flyt, read_infotrygd, read_sosio
from adapters.sosio import HEADER
from personkort.records import Extract, Register

INFOTRYGD_NIGHT1 = "infotrygd_20261120.dat"


def _copy_drop(sample: Path, tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    shutil.copytree(sample / "night1", drop)
    for path in drop.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return drop


def test_cut_short_infotrygd_file_is_refused_whole(sample: Path, tmp_path: Path) -> None:
    data = (sample / "night1" / "infotrygd" / INFOTRYGD_NIGHT1).read_bytes()
    cut = tmp_path / INFOTRYGD_NIGHT1
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RefusedSource) as info:
        read_infotrygd(cut)
    message = str(info.value)
    assert INFOTRYGD_NIGHT1 in message
    assert "trailer" in message
    assert "cut short" in message


def test_infotrygd_file_missing_a_record_fails_the_trailer(sample: Path, tmp_path: Path) -> None:
    lines = (sample / "night1" / "infotrygd" / INFOTRYGD_NIGHT1).read_bytes().split(b"\n")
    del lines[5]
    short = tmp_path / INFOTRYGD_NIGHT1
    short.write_bytes(b"\n".join(lines))
    with pytest.raises(RefusedSource) as info:
        read_infotrygd(short)
    assert "trailer mismatch: trailer says 408 records" in str(info.value)
    assert "the file has 407 records" in str(info.value)


def test_infotrygd_amount_changed_in_transfer_fails_the_trailer(
    sample: Path, tmp_path: Path
) -> None:
    lines = (sample / "night1" / "infotrygd" / INFOTRYGD_NIGHT1).read_bytes().split(b"\n")
    line = bytearray(lines[2])  # a benefit record
    line[46] = ord("9") if line[46] != ord("9") else ord("8")
    lines[2] = bytes(line)
    changed = tmp_path / INFOTRYGD_NIGHT1
    changed.write_bytes(b"\n".join(lines))
    with pytest.raises(RefusedSource, match="øre"):
        read_infotrygd(changed)


def test_drop_with_refused_infotrygd_loads_none_of_it(sample: Path, tmp_path: Path) -> None:
    drop = _copy_drop(sample, tmp_path)
    path = drop / "infotrygd" / INFOTRYGD_NIGHT1
    path.write_bytes(path.read_bytes()[:20_000])
    extract = read_drop(drop)
    assert [(r.register, r.source) for r in extract.refusals] == [
        (Register.INFOTRYGD, INFOTRYGD_NIGHT1)
    ]
    records = [*extract.persons, *extract.state_benefits, *extract.municipal_services]
    assert not [r for r in records if r.register is Register.INFOTRYGD]
    assert any(r.register is Register.ARENA for r in extract.persons)
    assert any(r.register is Register.KOMMUNE for r in extract.persons)


def test_missing_register_is_reported(sample: Path, tmp_path: Path) -> None:
    drop = _copy_drop(sample, tmp_path)
    shutil.rmtree(drop / "arena")
    extract = read_drop(drop)
    assert [r.register for r in extract.refusals] == [Register.ARENA]
    assert "no arena extract delivered" in extract.refusals[0].reason


def _conserved(extract: Extract) -> None:
    for c in extract.counts:
        assert c.read == c.accepted + c.quarantined, c


def test_sosio_rejects_each_bad_row_with_its_reason(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "1;15928011418;Ås;Åse;Storgata 1;0150;OSLO;Økonomisk sosialhjelp;01.02.2024;;1 234,50;a;",
        "2;;Berg;Kari;Storgata 2;0150;OSLO;Rustiltak;31.02.2024;;;ab1;",
        "3;;Berg;Kari;Storgata 2;0150;OSLO;Ukjent tjeneste;01.02.2024;;;ab1;",
        "4;;Berg;Kari;Storgata 2;0150;OSLO;Rustiltak;01.02.2024;;100;ab1;x;extra",
        "5;;Berg;Kari;Storgata 2;01500;OSLO;Rustiltak;01.02.2024;01.01.2024;100;ab1;x",
        "",
    ]
    path = tmp_path / "sosio_0301_20261120.csv"
    path.write_bytes("\r\n".join(rows).encode("cp1252") + b"6;\x81bad\r\n")
    extract = read_sosio(path)
    _conserved(extract)
    reasons = {q.location: q.reason for q in extract.quarantine}
    assert "invalid vedtak_fra date" in reasons["sosio_0301:line:3"]
    assert "tjeneste" in reasons["sosio_0301:line:4"]
    assert "bad columns: 14 of 13" in reasons["sosio_0301:line:5"]
    assert "postnr" in reasons["sosio_0301:line:6"]
    assert "vedtak_til before vedtak_fra" in reasons["sosio_0301:line:6"]
    assert "Windows-1252" in reasons["sosio_0301:line:7"]
    assert [p.surname for p in extract.persons] == ["Ås"]
    assert extract.municipal_services[0].monthly_amount is not None
    assert extract.counts[0].read == 6


def test_sosio_with_a_foreign_header_quarantines_every_row(tmp_path: Path) -> None:
    path = tmp_path / "sosio_0301_20261120.csv"
    path.write_bytes(b"a;b;c\r\n1;2;3\r\n4;5;6\r\n")
    extract = read_sosio(path)
    _conserved(extract)
    assert len(extract.quarantine) == 2
    assert all("header" in q.reason for q in extract.quarantine)


def _flyt_line(**overrides: object) -> str:
    obj: dict[str, object] = {
        "klientId": "K-1",
        "kommunenr": "0301",
        "person": {
            "ident": "15928011418",
            "identType": "FNR",
            "fornavn": "Ola",
            "mellomnavn": None,
            "etternavn": "Nordmann",
            "fodselsdato": "1980-12-15",
            "adresse": {"gate": "Storgata 1", "postnr": "0150", "poststed": "OSLO"},
            "telefon": None,
        },
        "tjenester": [
            {"kode": "OKSOS", "fra": "2025-01-01", "til": None, "belopMnd": 100.5},
        ],
        "sistEndret": "2026-11-20T01:30:00+01:00",
    }
    obj.update(overrides)
    return json.dumps(obj, ensure_ascii=False)


def test_flyt_quarantines_the_whole_line_for_one_bad_service(tmp_path: Path) -> None:
    lines = [
        _flyt_line(),
        _flyt_line(
            klientId="K-2",
            tjenester=[{"kode": "OKSOS", "fra": "2025-01-01"}, {"kode": "X", "fra": "2025-01-01"}],
        ),
        _flyt_line(klientId="K-3", kommunenr="4601"),
        _flyt_line(klientId="K-4", tjenester=[{"kode": "KVP", "fra": "2025-02-30"}]),
        _flyt_line(
            klientId="K-5", tjenester=[{"kode": "KVP", "fra": "2025-02-01", "belopMnd": "ca 5000"}]
        ),
        "[1, 2]",
        _flyt_line(klientId="K-7")[:80],
    ]
    path = tmp_path / "flyt_0301_20261120.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    extract = read_flyt(path)
    _conserved(extract)
    reasons = {q.location: q.reason for q in extract.quarantine}
    assert "kode" in reasons["flyt_0301:line:2"]
    assert "not the file's municipality" in reasons["flyt_0301:line:3"]
    assert "invalid fra date" in reasons["flyt_0301:line:4"]
    assert "bad amount" in reasons["flyt_0301:line:5"]
    assert "not a JSON object" in reasons["flyt_0301:line:6"]
    assert "truncated json" in reasons["flyt_0301:line:7"]
    assert [p.source_key for p in extract.persons] == ["flyt:0301:K-1"]
    assert len(extract.municipal_services) == 1
    assert extract.persons[0].changed_at is not None
    assert extract.persons[0].changed_at.utcoffset() is not None


def test_flyt_ident_type_that_contradicts_the_number_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "flyt_0301_20261120.jsonl"
    person = json.loads(_flyt_line())["person"]
    person["identType"] = "DNR"
    path.write_text(_flyt_line(person=person) + "\n", encoding="utf-8")
    extract = read_flyt(path)
    assert [f.kind for f in extract.findings] == ["ident_type_mismatch"]
    assert len(extract.persons) == 1
