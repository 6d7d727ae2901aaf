"""Municipal system "Sosio": semicolon CSV in Windows-1252, CRLF, one row per service decision.

A client with three services has three rows; the client's person record is taken from its first
row that passes. Dates are ``DD.MM.YYYY``, amounts Norwegian (``7 414,26``). Locations are
physical lines with the header as line 1. A line the csv module cannot split (a bare CR inside
it, a field over its size limit) is quarantined like any other unreadable line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from adapters import limits, schemas
from adapters.boundary import (
    BadValue,
    Boundary,
    blank_to_none,
    check_fits,
    parse_date,
    parse_decimal,
)
from adapters.municipal import SOSIO_SERVICES, municipality_of, source_name
from personkort.ident import normalise
from personkort.records import (
    Extract,
    MunicipalService,
    MunicipalServiceCode,
    PersonRecord,
    Register,
)

K = Register.KOMMUNE
HEADER = (
    "klientnr;fodselsnummer;etternavn;fornavn;adresse;postnr;poststed;tjeneste;vedtak_fra;"
    "vedtak_til;belop_mnd;saksbehandler;merknad"
)
COLUMNS = HEADER.split(";")


def read_sosio(path: Path) -> Extract:
    """Read one municipality's Sosio file."""
    kommune = municipality_of(path, "sosio")
    prefix = source_name("sosio", kommune)
    b = Boundary(K, prefix)
    lines = path.read_bytes().split(b"\n")
    header_ok = bool(lines) and lines[0].rstrip(b"\r").decode("cp1252", "replace") == HEADER
    for n, raw_bytes in enumerate(lines[1:], start=2):
        raw_bytes = raw_bytes.rstrip(b"\r")
        if not raw_bytes.strip():
            continue  # an empty line carries no record
        loc = f"{prefix}:line:{n}"
        try:
            text = raw_bytes.decode("cp1252")
        except UnicodeDecodeError as exc:
            b.reject(loc, f"not Windows-1252 text: {exc.reason}", repr(raw_bytes))
            continue
        if not header_ok:
            b.reject(loc, "file header does not match the agreed Sosio columns", text)
            continue
        try:
            fields = next(csv.reader([text], delimiter=";"), [])
        except csv.Error as exc:
            b.reject(loc, f"not a CSV row: {exc}", text)
            continue
        if len(fields) != len(COLUMNS):
            b.reject(loc, f"bad columns: {len(fields)} of {len(COLUMNS)}", text)
            continue
        try:
            row = _values(dict(zip(COLUMNS, fields, strict=True)))
        except BadValue as exc:
            b.reject(loc, str(exc), text)
            continue
        b.candidate(row, loc, text)

    out = Extract()
    clients: set[str] = set()
    for row, loc in b.validated(schemas.SosioRow):
        key = f"sosio:{kommune}:{row['klientnr']}"
        if key not in clients:
            clients.add(key)
            out.persons.append(_person(row, key, loc, kommune))
            b.check_ident(loc, row["fodselsnummer"], "fodselsnummer")
        out.municipal_services.append(
            MunicipalService(
                K,
                "sosio",
                key,
                loc,
                owner_kommune=kommune,
                service=MunicipalServiceCode(row["tjeneste"]),
                from_date=row["vedtak_fra"],
                to_date=row["vedtak_til"],
                monthly_amount=row["belop_mnd"],
                caseworker=row["saksbehandler"],
                free_text=row["merknad"],
            )
        )
    return b.finish(out)


def _values(raw: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {k: blank_to_none(v) for k, v in raw.items()}
    fnr = row["fodselsnummer"]
    service = row["tjeneste"]
    row.update(
        fodselsnummer=normalise(fnr) if fnr else None,
        tjeneste=SOSIO_SERVICES.get(service or "", service),
        vedtak_fra=parse_date(row["vedtak_fra"], "vedtak_fra", fmt="dmy"),
        vedtak_til=parse_date(row["vedtak_til"], "vedtak_til", fmt="dmy"),
        belop_mnd=parse_decimal(row["belop_mnd"], "belop_mnd"),
    )
    if row["vedtak_fra"] is None:
        raise BadValue("vedtak_fra is missing")
    check_fits(row, limits.SOSIO)
    return row


def _person(row: dict[str, Any], key: str, loc: str, kommune: str) -> PersonRecord:
    return PersonRecord(
        register=K,
        source_key=key,
        location=loc,
        ident=row["fodselsnummer"],
        surname=row["etternavn"],
        given_names=row["fornavn"],
        address=row["adresse"],
        postnr=row["postnr"],
        poststed=row["poststed"],
        owner_kommune=kommune,
    )
