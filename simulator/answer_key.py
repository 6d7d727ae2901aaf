"""The answer key a real extract never has: people, which record is whose, what was malformed."""

from __future__ import annotations

import csv
from pathlib import Path

from simulator.formats import Written
from simulator.people import Person

PERSON_COLUMNS = [
    "person_key",
    "fnr",
    "dnr",
    "fornavn",
    "mellomnavn",
    "etternavn",
    "fodselsdato",
    "kommunenr",
    "adresse",
    "postnr",
    "adressebeskyttelse",
    "skjermet",
    "dodsdato",
    "in_arena",
    "in_infotrygd",
    "in_kommune",
]


def write_truth(folder: Path, people: list[Person], written: Written) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    registers: dict[str, set[str]] = {}
    for register, _, key in written.links:
        registers.setdefault(key, set()).add(register)
    with (folder / "persons.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(PERSON_COLUMNS)
        for p in people:
            seen = registers.get(p.key, set())
            out.writerow(
                [
                    p.key,
                    p.fnr or "",
                    p.dnr or "",
                    p.given,
                    p.middle or "",
                    p.surname,
                    p.born.isoformat(),
                    p.kommune,
                    p.address,
                    p.postnr,
                    p.protection or "",
                    int(p.skjermet),
                    p.died.isoformat() if p.died else "",
                    int("arena" in seen),
                    int("infotrygd" in seen),
                    int("kommune" in seen),
                ]
            )
    with (folder / "links.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["register", "source_key", "person_key"])
        out.writerows(written.links)
    with (folder / "bad.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["register", "location", "kind"])
        out.writerows(written.bad)


def write_feed_truth(
    folder: Path, relatives: list[tuple[str, str, str]], protection: list[tuple[str, str]]
) -> None:
    """The feed's answers: which cards each caseworker is refused, and every card's marker
    over all sources, the feed's included (its malformed lines are in ``bad.csv``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "relatives.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["caseworker_pid", "person_key", "relation"])
        out.writerows(relatives)
    with (folder / "feed_protection.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["person_key", "gradering"])
        out.writerows(protection)
