"""Recording the API's audit events: every lookup, consent and steward decision."""

from __future__ import annotations

from typing import Any

from api.problems import ProblemError
from api.services import Services
from personkort.audit import AuditUnavailable
from personkort.policy.engine import Caseworker, Decision


def caseworker_fields(worker: Caseworker) -> dict[str, Any]:
    return {
        "sub": worker.sub,
        "employer": worker.employer,
        "office": worker.office,
        "roles": sorted(worker.roles),
    }


def record_event(
    svc: Services,
    kind: str,
    worker: Caseworker,
    *,
    ident: str | None,
    details: dict[str, Any],
    trace_id: str | None = None,
) -> None:
    """Store an event durably or fail the request (503): nothing happens unaudited."""
    try:
        svc.audit.append(  # type: ignore[attr-defined]
            kind,
            {"caseworker": caseworker_fields(worker), **details},
            ident=ident,
            trace_id=trace_id,
        )
    except AuditUnavailable:
        raise ProblemError(
            503,
            "revisjonslogg_utilgjengelig",
            "Service Unavailable",
            "The audit log cannot be written; nothing was done.",
            trace_id,
        ) from None


def record_lookup(
    svc: Services,
    worker: Caseworker,
    *,
    card_id: str | None,
    ident: str | None,
    decision: Decision | None,
    policy_version: str,
    purpose: str | None,
    trace_id: str,
) -> None:
    if decision is None:
        outcome, codes = "not_found", ["ukjent_person"]
    elif not decision.permitted:
        outcome, codes = "deny", decision.reason_codes
    else:
        outcome, codes = ("partial" if decision.withheld else "permit"), decision.reason_codes
    record_event(
        svc,
        "lookup",
        worker,
        ident=ident,
        trace_id=trace_id,
        details={
            "card_id": card_id,
            "decision": outcome,
            "reason_codes": codes,
            "withheld": [
                {"field": w.field, "rule": w.rule, "reason": w.reason}
                for w in (decision.withheld if decision else [])
            ],
            "policy_version": policy_version,
            "purpose": purpose,
            "privileged_use": decision.privileged_use if decision else [],
            "trace_id": trace_id,
        },
    )
