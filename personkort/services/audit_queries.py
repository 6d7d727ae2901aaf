"""Auditors: who looked at whom, denials, privileged use, policy versions, the log's proof,
and a person's access report (GDPR art. 15: who processed my card, when, on which basis).

An auditor's search is itself an audit event (auditors are insiders too)."""

from __future__ import annotations

import csv as csvlib
import datetime as dt
import difflib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from personkort.audit import AuditLog, verify
from personkort.audit.export import to_cef
from personkort.ident import normalise
from personkort.policy.engine import Caseworker
from personkort.services import events
from personkort.services.errors import Invalid, NotFound, missing_role, new_trace, store_errors
from personkort.store import policies

ROLE = "revisor"
ELEVEN_DIGITS = re.compile(r"[0-9]{11}")
PAGE = 1000  # events read per query when a report needs every event of a person
# What a person's access report lists: the uses of their card by caseworkers. Auditors' own
# searches and stewards' identity decisions are internal control, not uses of the card.
REPORTED = ("lookup", "consent_search", "consent_refused")
CONSENT_CHANGES = ("consent_registered", "consent_withdrawn")
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads these as the start of a formula
CSV_COLUMNS = (
    "hendelse_nr",
    "tid_oslo",
    "tid_utc",
    "type",
    "saksbehandler",
    "kontor",
    "arbeidsgiver",
    "roller",
    "utfall",
    "grunner",
    "holdt_tilbake",
    "policyversjon",
    "formal",
    "privilegert_bruk",
    "sporings_id",
    "kort_id",
)


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


@dataclass(frozen=True, slots=True)
class WithheldField:
    """A field kept from the caseworker: its path, the policy's field class and the reason."""

    field: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One use of the person's card, as the person is told of it: the office, the employer and
    the caseworker's roles, never the caseworker's name or id (NAV's practice in innsyn)."""

    seq: int
    at: str  # UTC, as the log stores it
    kind: str
    office: str | None
    employer: str | None
    roles: tuple[str, ...]
    outcome: str | None
    reason_codes: tuple[str, ...]
    withheld: tuple[WithheldField, ...]
    policy_version: str | None
    purpose: str | None
    privileged_use: tuple[str, ...]
    consents_in_force: tuple[str, ...]  # scopes in force for that office then (from the log)
    trace_id: str | None


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A consent registered or withdrawn, by office: part of the basis the report names."""

    seq: int
    at: str
    kind: str
    consent_id: int | None
    scope: str | None
    office: str | None
    valid_from: str | None
    valid_to: str | None
    form_reference: str | None


@dataclass(frozen=True, slots=True)
class AccessReport:
    made_at: str
    rows: tuple[AccessRow, ...] = ()
    consents: tuple[ConsentChange, ...] = ()
    card_ids: tuple[str, ...] = ()


class AuditQueryService:
    def __init__(self, engine: sa.Engine, audit: AuditLog) -> None:
        self.engine = engine
        self.audit = audit

    def events(self, worker: Caseworker, search: EventFilter) -> list[dict[str, Any]]:
        self._role(worker)
        ident = normalise(search.ident) if search.ident else None
        if ident is not None and not ELEVEN_DIGITS.fullmatch(ident):
            # Nothing else is a number the log can hold; such a text (a lone control
            # character, say) could not even be recorded as the search's own event (503).
            raise Invalid("ugyldig_ident", "An identity number is 11 digits.")
        trace = new_trace()
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

    @staticmethod
    def csv(found: list[dict[str, Any]]) -> str:
        """The events as CSV for a spreadsheet: one row each, the same fields the JSON answer
        has (no identity number: the log holds none in clear), every cell that a spreadsheet
        would read as a formula quoted with a leading apostrophe."""
        out = io.StringIO()
        writer = csvlib.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for event in found:
            writer.writerow([_cell(v) for v in _csv_row(event)])
        return out.getvalue()

    def access_report(self, worker: Caseworker, ident: str) -> AccessReport:
        """Every use of the person's card (found by any of its numbers, typed in any shape):
        when, which office and employer, the role, what was withheld and on which basis. The
        report is itself an audit event (an auditor's search by person)."""
        self._role(worker)
        number = normalise(ident)
        if not ELEVEN_DIGITS.fullmatch(number):
            raise Invalid("ugyldig_ident", "An identity number is 11 digits.")
        trace = new_trace()
        events.record(
            self.audit,
            "audit_search",
            worker,
            {"filters": {"access_report": True}, "by_person": True, "trace_id": trace},
            ident=number,
            trace_id=trace,
        )
        with store_errors(trace):
            found = list(self._every(number))
        changes = [_consent_change(e) for e in found if e["kind"] in CONSENT_CHANGES]
        rows = [_access_row(e, changes) for e in found if e["kind"] in REPORTED]
        cards = sorted({e["data"]["card_id"] for e in found if e["data"].get("card_id")})
        return AccessReport(
            made_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            rows=tuple(rows),
            consents=tuple(changes),
            card_ids=tuple(cards),
        )

    def _every(self, number: str) -> Iterable[dict[str, Any]]:
        offset = 0
        while True:
            page = self.audit.events(ident=number, limit=PAGE, offset=offset)
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

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
        """Every policy version, oldest first: when it first ran and who activated it (the
        ``policy_activated`` event's caseworker; ``system`` is the server loading its folder)."""
        self._role(worker)
        with store_errors():
            known = policies.versions(self.engine)
            activated = self.audit.events(kind="policy_activated", limit=10_000)
        by = {
            e["data"].get("policy_version"): (e["data"].get("caseworker") or {}).get("sub")
            for e in activated
        }
        return [{"version": v, "activated_at": a, "activated_by": by.get(v)} for v, a in known]

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
        trace = new_trace()
        details = {"filters": what, "by_person": False, "trace_id": trace}
        events.record(self.audit, "audit_search", worker, details, trace_id=trace)

    @staticmethod
    def _role(worker: Caseworker) -> None:
        if ROLE not in worker.roles:
            raise missing_role(ROLE)


def vars_of(search: EventFilter) -> dict[str, Any]:
    return {name: getattr(search, name) for name in EventFilter.__dataclass_fields__}


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA) else text


def _oslo(at: str) -> str:
    moment = dt.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    try:
        from zoneinfo import ZoneInfo

        moment = moment.astimezone(ZoneInfo("Europe/Oslo"))
    except Exception:  # no tz database: UTC is still right, only not local
        pass
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _csv_row(event: dict[str, Any]) -> list[object]:
    data = event.get("data", {})
    who = data.get("caseworker") or {}
    return [
        event["seq"],
        _oslo(event["at"]),
        event["at"],
        event["kind"],
        who.get("sub"),
        who.get("office"),
        who.get("employer"),
        " ".join(who.get("roles") or []),
        data.get("decision"),
        " ".join(data.get("reason_codes") or []),
        " ".join(sorted({w.get("rule", "") for w in data.get("withheld") or []})),
        data.get("policy_version"),
        data.get("purpose"),
        " ".join(data.get("privileged_use") or []),
        data.get("trace_id"),
        data.get("card_id"),
    ]


def _consent_change(event: dict[str, Any]) -> ConsentChange:
    data = event["data"]
    return ConsentChange(
        seq=event["seq"],
        at=event["at"],
        kind=event["kind"],
        consent_id=data.get("consent_id"),
        scope=data.get("scope"),
        office=data.get("office"),
        valid_from=data.get("valid_from"),
        valid_to=data.get("valid_to"),
        form_reference=data.get("form_reference"),
    )


def _in_force(changes: list[ConsentChange], office: str | None, at: str) -> tuple[str, ...]:
    """The consent scopes in force for ``office`` at ``at``, as the log tells them: registered
    before, for the office, the day inside the period, not withdrawn before. (The lookup event
    itself does not name the consents the policy counted.)"""
    day = at[:10]
    withdrawn = {c.consent_id: c.at for c in changes if c.kind == "consent_withdrawn"}
    return tuple(
        sorted(
            {
                c.scope
                for c in changes
                if c.kind == "consent_registered"
                and c.scope
                and c.office == office
                and c.at <= at
                and (c.valid_from or "") <= day <= (c.valid_to or "")
                and not (c.consent_id in withdrawn and withdrawn[c.consent_id] <= at)
            }
        )
    )


def _access_row(event: dict[str, Any], changes: list[ConsentChange]) -> AccessRow:
    data = event["data"]
    who = data.get("caseworker") or {}
    return AccessRow(
        seq=event["seq"],
        at=event["at"],
        kind=event["kind"],
        office=who.get("office"),
        employer=who.get("employer"),
        roles=tuple(who.get("roles") or ()),
        outcome=data.get("decision"),
        reason_codes=tuple(data.get("reason_codes") or ()),
        withheld=tuple(
            WithheldField(w.get("field", ""), w.get("rule", ""), w.get("reason", ""))
            for w in data.get("withheld") or ()
        ),
        policy_version=data.get("policy_version"),
        purpose=data.get("purpose"),
        privileged_use=tuple(data.get("privileged_use") or ()),
        consents_in_force=_in_force(changes, who.get("office"), event["at"]),
        trace_id=data.get("trace_id"),
    )
