"""Auditors: who looked at whom, denials, privileged use, policy versions, the log's proof.

An auditor's search is itself an audit event (auditors are insiders too)."""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog, verify
from personkort.audit.export import to_cef
from personkort.ident import normalise
from personkort.policy.engine import Caseworker
from personkort.services import events
from personkort.services.errors import NotFound, missing_role, store_errors
from personkort.store import policies

ROLE = "revisor"


@dataclass(frozen=True, slots=True)
class EventFilter:
    ident: str | None = None
    card_id: str | None = None
    caseworker: str | None = None
    kind: str | None = None
    decision: str | None = None
    privileged: bool | None = None
    since: str | None = None  # UTC text stamps, as the log stores them
    until: str | None = None
    limit: int = 100
    offset: int = 0


class AuditQueryService:
    def __init__(self, engine: sa.Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def events(self, worker: Caseworker, search: EventFilter) -> list[dict[str, Any]]:
        self._role(worker)
        ident = normalise(search.ident) if search.ident else None
        trace = uuid.uuid4().hex
        asked = {k: v for k, v in vars_of(search).items() if v is not None and k != "ident"}
        events.record(
            self.audit,
            "audit_search",
            worker,
            {"filters": asked, "by_person": ident is not None, "trace_id": trace},
            ident=ident,
            trace_id=trace,
        )
        with store_errors(trace):
            found = self.audit.events(
                ident=ident,
                card_id=search.card_id,
                caseworker=search.caseworker,
                kind=search.kind,
                decision=search.decision,
                privileged=search.privileged,
                since=search.since,
                until=search.until,
                limit=search.limit,
                offset=search.offset,
            )
        for event in found:
            event["data"].pop("ident_sealed", None)  # findable by HMAC; readable only with the key
        return found

    @staticmethod
    def cef(found: list[dict[str, Any]]) -> str:
        return to_cef(found)

    def verify(self, worker: Caseworker) -> dict[str, Any]:
        """Recompute the chain and every checkpoint now (reading the whole log: audited)."""
        self._role(worker)
        self._seen(worker, {"verify": True})
        with store_errors():
            result = verify(self.engine, self.audit.keys)
        return {
            "ok": result.ok,
            "events": result.events,
            "checkpoints": result.checkpoints,
            "first_bad_seq": result.first_bad_seq,
            "problem": result.problem,
        }

    def proof(self, worker: Caseworker, seq: int) -> dict[str, Any]:
        """The event, its Merkle audit path and the signed checkpoint that covers it (the event's
        whole body, as hashed: audited)."""
        self._role(worker)
        self._seen(worker, {"proof_of": seq})
        try:
            with store_errors():
                return self.audit.prove(seq)
        except (LookupError, IndexError):
            raise NotFound("ukjent_hendelse", "No checkpoint covers it yet.") from None

    def policies(self, worker: Caseworker) -> list[dict[str, Any]]:
        self._role(worker)
        with store_errors():
            return [{"version": v, "activated_at": a} for v, a in policies.versions(self.engine)]

    def policy_diff(self, worker: Caseworker, old: str, new: str) -> str:
        """What changed between two policy versions, as a unified diff of their files."""
        self._role(worker)
        with store_errors():
            files = policies.files_of(self.engine, [old, new])
        if old not in files or new not in files:
            raise NotFound("ukjent_policy", "No such policy version.")
        lines: list[str] = []
        for name in sorted(set(files[old]) | set(files[new])):
            lines += difflib.unified_diff(
                files[old].get(name, "").splitlines(keepends=True),
                files[new].get(name, "").splitlines(keepends=True),
                f"{old[:12]}/{name}",
                f"{new[:12]}/{name}",
            )
        return "".join(lines)

    def _seen(self, worker: Caseworker, what: dict[str, Any]) -> None:
        trace = uuid.uuid4().hex
        details = {"filters": what, "by_person": False, "trace_id": trace}
        events.record(self.audit, "audit_search", worker, details, trace_id=trace)

    @staticmethod
    def _role(worker: Caseworker) -> None:
        if ROLE not in worker.roles:
            raise missing_role(ROLE)


def vars_of(search: EventFilter) -> dict[str, Any]:
    return {name: getattr(search, name) for name in EventFilter.__dataclass_fields__}
