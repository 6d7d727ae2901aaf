"""Fingerprints tell a changed source record from one that only moved in its file."""

from __future__ import annotations

import random
from pathlib import Path

from adapters import read_infotrygd
from personkort.fingerprint import fingerprints
from personkort.records import Extract


def _lines(path: Path) -> tuple[bytes, list[bytes], bytes]:
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    return lines[0], lines[1:-1], lines[-1]


def _write(path: Path, header: bytes, body: list[bytes], trailer: bytes) -> Path:
    path.write_bytes(b"\n".join([header, *body, trailer]) + b"\n")
    return path


def test_infotrygd_records_moved_in_the_file_keep_their_fingerprints(
    sample: Path, tmp_path: Path
) -> None:
    (source,) = (sample / "night1" / "infotrygd").glob("*.dat")
    header, body, trailer = _lines(source)
    shuffled = list(body)
    random.Random(3).shuffle(shuffled)
    before = read_infotrygd(source).fingerprints
    moved = read_infotrygd(_write(tmp_path / source.name, header, shuffled, trailer))
    assert before and moved.fingerprints == before


def test_a_changed_line_changes_its_records_fingerprint_only(sample: Path, tmp_path: Path) -> None:
    (source,) = (sample / "night1" / "infotrygd").glob("*.dat")
    header, body, trailer = _lines(source)
    before = read_infotrygd(source)
    person = next(p for p in before.persons if p.address)
    n = int(person.location.removeprefix("line:")) - 2
    line = body[n]
    body[n] = line[:56] + b"Nyveien 1".ljust(30) + line[86:]  # ADRESSE, positions 57-86
    after = read_infotrygd(_write(tmp_path / source.name, header, body, trailer))
    key = f"infotrygd:{person.source_key}"
    changed = {k for k, v in after.fingerprints.items() if before.fingerprints.get(k) != v}
    assert changed == {key}
    assert next(p for p in after.persons if p.source_key == person.source_key).address == (
        "Nyveien 1"
    )


def test_parsed_records_fingerprint_what_they_say_not_where() -> None:
    from dataclasses import replace

    from personkort.records import PersonRecord, Register

    person = PersonRecord(Register.ARENA, "1", "PERSON:1", "01010112345", "Hansen", "Per")
    moved = replace(person, location="PERSON:9")
    renamed = replace(person, surname="Olsen")
    assert fingerprints(Extract(persons=[person])) == fingerprints(Extract(persons=[moved]))
    assert fingerprints(Extract(persons=[person])) != fingerprints(Extract(persons=[renamed]))
