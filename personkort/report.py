"""The night's run report: what each register delivered and what a data steward must act on.

Stored with the night, shown in the stewards' API, written as a file by ``personkort night``.
Card ids, never identity numbers: the report travels to stewards' screens and logs.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from personkort.reconcile.engine import Reconciliation
from personkort.reconcile.profile import record_key
from personkort.records import Extract, MunicipalService, Register

FAR_FUTURE = dt.date(9999, 12, 31)
LISTED = 200  # findings listed by name in the report; the rest are counted


def _overlap(a: MunicipalService, b: MunicipalService) -> tuple[dt.date, dt.date] | None:
    start = max(a.from_date, b.from_date)
    end = min(a.to_date or FAR_FUTURE, b.to_date or FAR_FUTURE)
    return (start, end) if start <= end else None


def double_payments(
    extract: Extract, result: Reconciliation, card_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Social assistance paid by a municipal system and through Infotrygd SH for the same
    municipality and overlapping months, to the same person."""
    services: dict[str, list[MunicipalService]] = defaultdict(list)
    for s in extract.municipal_services:
        if s.service == "OKSOS":
            services[record_key(s.register, s.source_key)].append(s)
    found = []
    for n, records in enumerate(result.clusters):
        if len(records) < 2:
            continue  # one record is one register: nothing to pay twice
        lines = [s for r in records for s in services.get(r, ())]
        municipal = [s for s in lines if s.register is Register.KOMMUNE]
        infotrygd = [s for s in lines if s.register is Register.INFOTRYGD]
        for a in municipal:
            for b in infotrygd:
                both = _overlap(a, b) if a.owner_kommune == b.owner_kommune else None
                if both:
                    found.append(
                        {
                            "card_id": card_ids[n],
                            "kommunenr": a.owner_kommune,
                            "from": both[0].isoformat(),
                            "to": None if both[1] == FAR_FUTURE else both[1].isoformat(),
                            "municipal": a.location,
                            "infotrygd": b.location,
                        }
                    )
    return found


def protection_disagreements(
    extract: Extract, result: Reconciliation, card_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """People the state registers disagree about: one says protected, the other not (yet)."""
    shared = {r for records in result.clusters if len(records) > 1 for r in records}
    marker = {
        key: (p.register.value, p.protection)
        for p in extract.persons
        if p.register is not Register.KOMMUNE
        and (key := record_key(p.register, p.source_key)) in shared
    }
    found = []
    for n, records in enumerate(result.clusters):
        if len(records) < 2:
            continue  # one record cannot disagree with itself
        said = {marker[r] for r in records if r in marker}
        if len({m for _, m in said}) > 1:
            found.append(
                {
                    "card_id": card_ids[n],
                    "registers": sorted(
                        {f"{register}: {m.value if m else 'ingen'}" for register, m in said}
                    ),
                }
            )
    return found


def build(
    extract: Extract,
    result: Reconciliation,
    card_ids: Sequence[str],
    counts: dict[str, Any],
    gates: list[dict[str, str]],
) -> dict[str, Any]:
    payments = double_payments(extract, result, card_ids)
    disagreements = protection_disagreements(extract, result, card_ids)
    invalid = [f for f in extract.findings if f.kind == "invalid_ident"]
    return {
        "counts": counts,
        "gates": gates,
        "findings": {
            "possible_double_payments": {"count": len(payments), "listed": payments[:LISTED]},
            "protection_disagreements": {
                "count": len(disagreements),
                "listed": disagreements[:LISTED],
            },
            "invalid_identity_numbers": {
                "count": len(invalid),
                "listed": [
                    {"register": f.register.value, "location": f.location} for f in invalid[:LISTED]
                ],
            },
            "pre_reform_municipality_numbers": sum(
                1 for f in extract.findings if f.kind == "pre_reform_kommunenr"
            ),
        },
    }
