"""Exporting audit events: JSON for auditors, CEF lines for NAV's SIEM.

CEF (ArcSight Common Event Format): ``CEF:Version|Vendor|Product|Version|SignatureID|Name|
Severity|Extension``. In the header, ``|`` and ``\\`` are escaped with a backslash; in extension
values ``\\`` and ``=`` are, and a line feed and a carriage return become ``\\n`` and ``\\r``.
CEF has no escape for any other control character, so every other one that could break a
line or a display (C0, DEL, C1 incl. NEL, VT, FF, ESC, U+2028/U+2029, invisible format
characters such as bidi overrides, lone surrogates) is replaced by U+FFFD, in the header also
line feed and carriage return. One event is always exactly one line.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Iterable
from typing import Any

NAMES = {
    "lookup": "Oppslag personkort",
    "consent_registered": "Samtykke registrert",
    "consent_withdrawn": "Samtykke trukket",
    "policy_activated": "Policyversjon aktivert",
    "steward_decision": "Identitetsavgjørelse",
    "consent_search": "Samtykkesøk",
    "consent_refused": "Samtykke avvist",
    "audit_search": "Søk i revisjonslogg",
}


REPLACEMENT = "\ufffd"
_UNSAFE = ("Cc", "Cf", "Zl", "Zp", "Cs")  # control, format, line/paragraph separator, surrogate


def _safe(text: str, keep: str = "") -> str:
    """``text`` with every control-ish character but those in ``keep`` replaced by U+FFFD."""
    if text.isprintable():
        return text  # the common case: nothing to replace (isprintable is false for all of them)
    return "".join(
        c if c in keep or unicodedata.category(c) not in _UNSAFE else REPLACEMENT for c in text
    )


def cef_header(value: object) -> str:
    return _safe(str(value)).replace("\\", "\\\\").replace("|", "\\|")


def cef_value(value: object) -> str:
    text = _safe(str(value), keep="\n\r")
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def cef_line(event: dict[str, Any]) -> str:
    data = event.get("data", {})
    kind = event.get("kind", "")
    decision = data.get("decision")
    severity = 7 if data.get("privileged_use") else 5 if decision == "deny" else 3
    at = dt.datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    fields: list[tuple[str, object]] = [
        ("end", int(at.timestamp() * 1000)),
        ("externalId", event["seq"]),
        ("suid", (data.get("caseworker") or {}).get("sub", "")),
        ("duid", data.get("ident_hmac") or data.get("card_id") or ""),
    ]
    if decision:
        fields += [
            ("flexString1Label", "Decision"),
            ("flexString1", "Deny" if decision in ("deny", "not_found") else "Permit"),
            ("act", decision),
        ]
    if data.get("policy_version"):
        fields += [("cs3Label", "PolicyVersion"), ("cs3", data["policy_version"])]
    if data.get("reason_codes"):
        fields += [("cs5Label", "Reasons"), ("cs5", ",".join(data["reason_codes"]))]
    if data.get("purpose"):
        fields += [("cs6Label", "Purpose"), ("cs6", data["purpose"])]
    if kind == "lookup":
        fields.append(("request", "/api/v1/personkort"))
    header = "|".join(
        cef_header(part)
        for part in ("NAV", "personkort", "1.0", kind, NAMES.get(kind, kind), str(severity))
    )
    extension = " ".join(f"{key}={cef_value(value)}" for key, value in fields)
    return f"CEF:0|{header}|{extension}"


def to_json(events: Iterable[dict[str, Any]]) -> str:
    return json.dumps(list(events), ensure_ascii=False, indent=1)


def to_cef(events: Iterable[dict[str, Any]]) -> str:
    return "".join(cef_line(e) + "\n" for e in events)
