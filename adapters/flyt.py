"""Municipal system "Flyt": UTF-8 JSON Lines, one client with all its services per line.

A line is one record: if the client or any of its services cannot be read, the whole line is
quarantined, so a card never shows half a client. A line that is no JSON the parser can hold
(nested past its recursion limit, an integer of thousands of digits) is quarantined too.
"""

from __future__ import annotations

import json
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
    parse_timestamp,
    schema_failures,
)
from adapters.municipal import municipality_of, source_name
from personkort.ident import normalise
from personkort.records import (
    Extract,
    MunicipalService,
    MunicipalServiceCode,
    PersonRecord,
    Register,
)

K = Register.KOMMUNE


def read_flyt(path: Path) -> Extract:
    """Read one municipality's Flyt file."""
    kommune = municipality_of(path, "flyt")
    prefix = source_name("flyt", kommune)
    b = Boundary(K, prefix)
    services: list[dict[str, Any]] = []
    for n, raw_bytes in enumerate(path.read_bytes().split(b"\n"), start=1):
        raw_bytes = raw_bytes.rstrip(b"\r")
        if not raw_bytes.strip():
            continue
        loc = f"{prefix}:line:{n}"
        raw = raw_bytes.decode("utf-8", errors="replace")
        try:
            obj = json.loads(raw_bytes.decode("utf-8"))
        except UnicodeDecodeError:
            b.reject(loc, "not UTF-8 text", raw)
            continue
        except json.JSONDecodeError as exc:
            reason = "truncated json" if not raw.rstrip().endswith("}") else "invalid json"
            b.reject(loc, f"{reason}: {exc.msg} at column {exc.colno}", raw)
            continue
        except RecursionError:
            b.reject(loc, "invalid json: nested too deeply to read", raw)
            continue
        except ValueError:  # an integer longer than Python converts (4300 digits)
            b.reject(loc, "invalid json: a number too long to read", raw)
            continue
        try:
            client, client_services = _values(obj, kommune, n)
        except BadValue as exc:
            b.reject(loc, str(exc), raw)
            continue
        client["_services"] = len(services), len(services) + len(client_services)
        services += client_services
        b.candidate(client, loc, raw)

    # Services are validated by their own schema; a failing service quarantines its whole line.
    service_failures = schema_failures(schemas.FlytService, services)
    line_failures: dict[int, str] = {}
    for index, client in enumerate(b.pending()):
        start, end = client["_services"]
        reasons = [service_failures[i] for i in range(start, end) if i in service_failures]
        if reasons:
            line_failures[index] = "service: " + "; ".join(reasons)

    out = Extract()
    for client, loc in b.validated(schemas.FlytClient, extra_failures=line_failures):
        key = f"flyt:{kommune}:{client['klientId']}"
        out.persons.append(_person(client, key, loc, kommune))
        b.check_ident(loc, client["ident"], "ident")
        _check_ident_type(b, loc, client)
        start, end = client["_services"]
        for s in services[start:end]:
            out.municipal_services.append(
                MunicipalService(
                    K,
                    "flyt",
                    key,
                    loc,
                    owner_kommune=kommune,
                    service=MunicipalServiceCode(s["kode"]),
                    from_date=s["fra"],
                    to_date=s["til"],
                    monthly_amount=s["belopMnd"],
                    caseworker=s["saksbehandler"],
                    free_text=s["begrunnelse"],
                )
            )
    return b.finish(out)


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadValue(f"{key} is not text ({type(value).__name__})")  # never the value
    return blank_to_none(value)


def _values(obj: Any, kommune: str, line: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(obj, dict):
        raise BadValue("line is not a JSON object")
    person = obj.get("person")
    if not isinstance(person, dict):
        raise BadValue("missing person")
    address = person.get("adresse") or {}
    if not isinstance(address, dict):
        raise BadValue("person.adresse is not an object")
    ident = _text(person, "ident")
    number = obj.get("kommunenr")
    if number != kommune:
        shown = repr(number) if isinstance(number, str) and len(number) <= 8 else "that"
        raise BadValue(f"kommunenr {shown} is not the file's municipality {kommune}")
    client = {
        "klientId": _text(obj, "klientId"),
        "kommunenr": number,
        "ident": normalise(ident) if ident else None,
        "identType": _text(person, "identType"),
        "fornavn": _text(person, "fornavn"),
        "mellomnavn": _text(person, "mellomnavn"),
        "etternavn": _text(person, "etternavn"),
        "fodselsdato": parse_date(_text(person, "fodselsdato"), "fodselsdato"),
        "gate": _text(address, "gate"),
        "postnr": _text(address, "postnr"),
        "poststed": _text(address, "poststed"),
        "telefon": _text(person, "telefon"),
        "sistEndret": parse_timestamp(_text(obj, "sistEndret"), "sistEndret"),
    }
    check_fits(client, limits.FLYT_CLIENT)
    tjenester = obj.get("tjenester")
    if tjenester is None:
        tjenester = []
    if not isinstance(tjenester, list) or not all(isinstance(t, dict) for t in tjenester):
        raise BadValue("tjenester is not a list of objects")
    services = []
    for t in tjenester:
        fra = parse_date(_text(t, "fra"), "fra")
        if fra is None:
            raise BadValue("service without fra date")
        amount = t.get("belopMnd")
        if isinstance(amount, bool) or not isinstance(amount, int | float | None):
            raise BadValue(f"bad amount in belopMnd: {type(amount).__name__}, not a number")
        service = {
            "line": line,
            "kode": _text(t, "kode"),
            "fra": fra,
            "til": parse_date(_text(t, "til"), "til"),
            "belopMnd": parse_decimal(amount, "belopMnd"),
            "saksbehandler": _text(t, "saksbehandler"),
            "begrunnelse": _text(t, "begrunnelse"),
        }
        check_fits(service, limits.FLYT_SERVICE)
        services.append(service)
    return client, services


def _check_ident_type(b: Boundary, loc: str, client: dict[str, Any]) -> None:
    ident, stated = client["ident"], client["identType"]
    if not ident or not stated or len(ident) != 11 or not ident[:2].isdigit():
        return
    actual = "DNR" if int(ident[:2]) > 40 else "FNR"
    if actual != stated:
        b.find(loc, "ident_type_mismatch", f"identType says {stated}, the number is a {actual}")


def _person(client: dict[str, Any], key: str, loc: str, kommune: str) -> PersonRecord:
    return PersonRecord(
        register=K,
        source_key=key,
        location=loc,
        ident=client["ident"],
        ident_type=client["identType"],
        surname=client["etternavn"],
        given_names=client["fornavn"],
        middle_name=client["mellomnavn"],
        birth_date=client["fodselsdato"],
        address=client["gate"],
        postnr=client["postnr"],
        poststed=client["poststed"],
        phone=client["telefon"],
        owner_kommune=kommune,
        changed_at=client["sistEndret"],
    )
