"""The audit events the use cases write, built in one place so every event names the caseworker
the same way, and written so that a log that cannot be written fails the use case (503)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog, AuditUnavailable, StoredEvent
from personkort.policy.engine import Caseworker, Decision
from personkort.services.errors import audit_unavailable


def caseworker_fields(worker: Caseworker) -> dict[str, Any]:
    return {
        "sub": worker.sub,
        "employer": worker.employer,
        "office": worker.office,
        "roles": sorted(worker.roles),
    }


def record(
    audit: AuditLog,
    kind: str,
    worker: Caseworker,
    details: dict[str, Any],
    *,
    ident: str | None = None,
    idents: Iterable[str] = (),
    trace_id: str | None = None,
    conn: sa.Connection | None = None,
) -> StoredEvent:
    """Store the event durably or raise Unavailable: nothing happens unaudited. With ``conn``
    the event is written on the caller's transaction, so the change and its event commit
    together or not at all; without, it joins the log's group commit."""
    data = {"caseworker": caseworker_fields(worker), **details}
    try:
        if conn is not None:
            return audit.append_in(
                conn, kind, data, ident=ident, idents=sorted(idents), trace_id=trace_id
            )
        return audit.append(kind, data, ident=ident, idents=sorted(idents), trace_id=trace_id)
    except AuditUnavailable:
        raise audit_unavailable(trace_id) from None


def lookup_details(
    *,
    card_id: str | None,
    decision: Decision | None,
    policy_version: str | None,
    purpose: str | None,
    trace_id: str,
    outcome: str | None = None,
    codes: list[str] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A lookup's event: the decision, reason codes, every withheld field with its rule, the
    policy version, the purpose and the privileged roles used."""
    if outcome is None:
        if decision is None:
            outcome, codes = "not_found", ["ukjent_person"]
        elif not decision.permitted:
            outcome, codes = "deny", decision.reason_codes
        else:
            outcome = "partial" if decision.withheld else "permit"
            codes = decision.reason_codes
    details: dict[str, Any] = {
        "card_id": card_id,
        "decision": outcome,
        "reason_codes": codes or [],
        "withheld": [
            {"field": w.field, "rule": w.rule, "reason": w.reason}
            for w in (decision.withheld if decision else [])
        ],
        "policy_version": policy_version,
        "purpose": purpose,
        "privileged_use": decision.privileged_use if decision else [],
        "trace_id": trace_id,
    }
    if note:
        details["note"] = note
    return details
