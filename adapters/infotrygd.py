"""Infotrygd-style national-insurance extract: fixed-width 120-character records in NS 4551-1.

The trailer is the file's control total. A file whose header or trailer is missing, or whose
trailer does not add up, was cut short in transfer and is refused whole (``RefusedSource``):
half a night of Infotrygd data would show caseworkers benefits as ended that are not.

``SH`` rows are municipal data held by Infotrygd: they become ``MunicipalService`` records owned
by the municipality in positions 48–51, never state benefits.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters import limits, schemas
from adapters.boundary import (
    BadValue,
    Boundary,
    RefusedSource,
    blank_to_none,
    check_fits,
    parse_date,
)
from adapters.ns4551 import decode
from personkort.fingerprint import raw_fingerprint
from personkort.reconcile.profile import record_key
from personkort.records import (
    Extract,
    MunicipalService,
    MunicipalServiceCode,
    PersonRecord,
    Protection,
    Register,
    StateBenefit,
)

IT = Register.INFOTRYGD
RECORD_LENGTH = 120
FILE_PATTERN = re.compile(r"^infotrygd_(\d{8})\.dat$")
_SPESREG = {"6": Protection.STRENGT_FORTROLIG, "7": Protection.FORTROLIG}
_KIND = {"1": "person", "2": "benefit"}


def read_infotrygd(path: Path) -> Extract:
    """Read one night's Infotrygd file; raise RefusedSource if its control total fails."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    _check_envelope(path, lines)

    out = Extract()
    b = Boundary(IT, path.name)
    person_lines: dict[str, int] = {}
    benefit_rows: list[tuple[dict[str, Any], str, str]] = []
    bad_person_fnrs: dict[str, str] = {}
    for n, raw_bytes in enumerate(lines[1:-1], start=2):
        loc = f"line:{n}"
        raw = raw_bytes.decode("ascii", errors="replace")
        kind = _KIND.get(raw[:1], "")
        try:
            text = decode(raw_bytes)
        except UnicodeDecodeError:
            b.reject(loc, "not 7-bit NS 4551 text", raw)
            continue
        if not kind:
            b.reject(loc, f"unknown record type {raw[:1]!r}", raw)
            continue
        if len(text) != RECORD_LENGTH:
            what = "truncated" if len(text) < RECORD_LENGTH else "overlong"
            b.reject(loc, f"{what} {kind} record: {len(text)} of {RECORD_LENGTH} characters", raw)
            if kind == "person" and len(text) >= 12:
                bad_person_fnrs[text[1:12]] = loc
            continue
        try:
            if kind == "person":
                row = _person_values(text)
                if row["FNR"] in person_lines:
                    first = person_lines[row["FNR"]]
                    b.reject(loc, f"duplicate person record: FNR already at line:{first}", raw)
                    continue
                person_lines[row["FNR"]] = n
                b.candidate(row, loc, raw)
            else:
                benefit_rows.append((_benefit_values(text), loc, raw))
        except BadValue as exc:
            b.reject(loc, str(exc), raw)
            if kind == "person":
                bad_person_fnrs[text[1:12]] = loc

    accepted_people: set[str] = set()
    raw_lines: dict[str, list[bytes]] = {}  # each accepted person's lines, for its fingerprint
    for row, loc in b.validated(schemas.InfotrygdPerson):
        accepted_people.add(row["FNR"])
        raw_lines[row["FNR"]] = [lines[_line_number(loc) - 1]]
        out.persons.append(_person_record(row, loc))
        b.check_ident(loc, row["FNR"], "FNR")
        b.check_kommune(loc, row["TKNR"], "TKNR")
    for fnr, n in person_lines.items():
        if fnr not in accepted_people:
            bad_person_fnrs[fnr] = f"line:{n}"
    for row, loc, raw in benefit_rows:
        fnr = row["FNR"]
        if fnr in bad_person_fnrs:
            b.reject(loc, f"its person record {bad_person_fnrs[fnr]} is quarantined", raw)
        elif fnr not in accepted_people:
            b.reject(loc, "orphan benefit: no person record with this FNR", raw)
        else:
            b.candidate(row, loc, raw)
    for row, loc in b.validated(schemas.InfotrygdBenefit):
        _benefit_record(out, row, loc)
        raw_lines[row["FNR"]].append(lines[_line_number(loc) - 1])
        if row["KOMMUNENR"]:
            b.check_kommune(loc, row["KOMMUNENR"], "KOMMUNENR")
    # A record's lines are what it says: hashing them is five times cheaper than hashing the
    # parsed records, and at a million persons this file is the longest part of the night's read.
    out.fingerprints = {record_key(IT, fnr): raw_fingerprint(raw) for fnr, raw in raw_lines.items()}
    return b.finish(out)


def _line_number(location: str) -> int:
    return int(location.removeprefix("line:"))


def _check_envelope(path: Path, lines: list[bytes]) -> None:
    """Header first, trailer last, and the trailer's count and sum match the records between."""

    def refuse(reason: str) -> RefusedSource:
        return RefusedSource(IT, path.name, reason)

    if not lines or not lines[0].startswith(b"HINFOTRYGD"):
        raise refuse("no header record (H INFOTRYGD) on line 1")
    trailer = lines[-1] if len(lines) > 1 else b""
    if not trailer.startswith(b"T"):
        raise refuse(
            f"no trailer record (T) at the end: the file ends at line {len(lines)} "
            "and was probably cut short in transfer"
        )
    try:
        count, total = int(trailer[1:10]), int(trailer[10:25])
    except ValueError:
        raise refuse(f"trailer on line {len(lines)} is not numeric: {trailer[:25]!r}") from None
    body = lines[1:-1]
    seen_total = 0
    for line in body:
        if line[:1] == b"2" and len(line) >= 47 and line[36:47].isdigit():
            seen_total += int(line[36:47])
    if count != len(body) or total != seen_total:
        raise refuse(
            f"trailer mismatch: trailer says {count} records summing {total} øre, "
            f"the file has {len(body)} records summing {seen_total} øre"
        )


def _person_values(text: str) -> dict[str, Any]:
    values = {
        "FNR": text[1:12],
        "NAVN": text[12:52].strip(),
        "TKNR": blank_to_none(text[52:56]),
        "ADRESSE": blank_to_none(text[56:86]),
        "POSTNR": blank_to_none(text[86:90]),
        "SPESREG": blank_to_none(text[90]),
        "DODSDATO": parse_date(text[91:99], "DODSDATO", fmt="yyyymmdd"),
    }
    check_fits(values, limits.INFOTRYGD_PERSON)
    return values


def _benefit_values(text: str) -> dict[str, Any]:
    fom = text[14:22]
    if fom == "00000000":
        raise BadValue("invalid FOM date: '00000000' (FOM is required)")
    grade, amount = text[30:33], text[36:47]
    if not grade.isdigit():
        raise BadValue(f"GRAD is not a number: {grade!r}")
    if not amount.isdigit():
        raise BadValue(f"bad amount in BELOP: {amount!r}")
    values = {
        "FNR": text[1:12],
        "STONADSKODE": text[12:14],
        "FOM": parse_date(fom, "FOM", fmt="yyyymmdd"),
        "TOM": parse_date(text[22:30], "TOM", fmt="yyyymmdd"),
        "GRAD": int(grade),
        "DIAGNOSE": blank_to_none(text[33:36]),
        "BELOP": int(amount),  # øre
        "KOMMUNENR": blank_to_none(text[47:51]),
    }
    check_fits(values, limits.INFOTRYGD_BENEFIT)
    return values


def _person_record(row: dict[str, Any], loc: str) -> PersonRecord:
    surname, _, given = row["NAVN"].partition(" ")
    return PersonRecord(
        register=IT,
        source_key=row["FNR"],
        location=loc,
        ident=row["FNR"],
        surname=surname,
        given_names=given.strip(),
        name_raw=row["NAVN"],
        death_date=row["DODSDATO"],
        address=row["ADRESSE"],
        postnr=row["POSTNR"],
        kommunenr=row["TKNR"],
        protection=_SPESREG.get(row["SPESREG"] or ""),
    )


def _benefit_record(out: Extract, row: dict[str, Any], loc: str) -> None:
    amount = Decimal(row["BELOP"]) / 100
    if row["STONADSKODE"] == "SH":
        out.municipal_services.append(
            MunicipalService(
                IT,
                "infotrygd",
                row["FNR"],
                loc,
                owner_kommune=row["KOMMUNENR"],
                service=MunicipalServiceCode.OKSOS,
                from_date=row["FOM"],
                to_date=row["TOM"],
                monthly_amount=amount,
            )
        )
        return
    out.state_benefits.append(
        StateBenefit(
            IT,
            row["FNR"],
            loc,
            row["STONADSKODE"],
            row["FOM"],
            row["TOM"],
            monthly_amount=amount,
            grade=row["GRAD"],
            diagnosis=row["DIAGNOSE"],
        )
    )
