"""The policy engine: (caseworker, card, consents, policy) → what this caseworker may see.

Pure: no database, no clock of its own. Deny by default: a field no grant opens is withheld,
and marked so (reason code, the rule that withheld it, and the consent scope that would open it
where one exists) — distinguishable from an empty value. Municipal services the caseworker's
office does not include are left out entirely, with no marker, and so is every value that comes
only from a municipal record the caseworker may not see: the fact that someone is a client of
social services is itself confidential.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from personkort.card import (
    CONFLICT_FIELDS,
    BenefitLine,
    Card,
    Source,
    Sourced,
    comparable,
)
from personkort.feed.records import FEED  # its values show only beside a register's
from personkort.policy.model import FieldClass, Grant, Office, Policy
from personkort.purpose import meaningful

HEALTH_JUSTIFICATION_CODES = {"AAP"}  # BEGRUNNELSE of AAP decisions describes health
# Gate steps about the person (not the caseworker's role or office, nor a missing purpose).
PERSON_STEPS = frozenset(
    {"strengt_fortrolig_adresse", "skjermet_person", "egne_data", "egen_familie", "egen_partner"}
)


@dataclass(frozen=True, slots=True)
class Caseworker:
    sub: str
    employer: str  # "stat" or "kommune:KKKK"
    office: str
    roles: frozenset[str]
    pid: str | None = None

    @property
    def municipality(self) -> str | None:
        return self.employer.split(":", 1)[1] if self.employer.startswith("kommune:") else None


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent as the policy sees it. ``person_ident`` is the number it was registered under:
    it counts on a card only if that number is one of the card's verified numbers."""

    scope: str
    office: str
    valid_from: dt.date
    valid_to: dt.date
    withdrawn_at: dt.datetime | None = None
    person_ident: str | None = None

    def in_force(self, office: str, now: dt.datetime) -> bool:
        today = now.date()
        withdrawn = self.withdrawn_at is not None and self.withdrawn_at <= now
        return self.office == office and self.valid_from <= today <= self.valid_to and not withdrawn


@dataclass(frozen=True, slots=True)
class Withheld:
    field: str
    rule: str
    reason: str
    consent: str | None


@dataclass(slots=True)
class Decision:
    permitted: bool
    policy_version: str
    reason_codes: list[str]
    message: str | None = None
    withheld: list[Withheld] = field(default_factory=list)
    privileged_use: list[str] = field(default_factory=list)  # kode6 / skjermet used to open
    view: dict[str, Any] | None = None
    # Permitted, but nothing on the card is for this caseworker (say, only another
    # municipality's RUS record): answered exactly as an unknown person.
    absent: bool = False


class _Context:
    def __init__(
        self,
        worker: Caseworker,
        card: Card,
        consents: list[Consent],
        policy: Policy,
        now: dt.datetime,
    ) -> None:
        self.worker = worker
        self.card = card
        self.policy = policy
        self.office: Office | None = policy.offices.get(worker.office)
        verified = card.verified_idents
        self.scopes = {
            c.scope
            for c in consents
            if c.in_force(worker.office, now) and c.person_ident in verified
        }
        self.withheld: list[Withheld] = []

    def owner_side(self, owner: str | None) -> bool:
        mine = self.worker.municipality
        if mine is None or owner is None:
            return False
        if mine == owner:
            return True
        return (
            self.office is not None
            and mine == self.office.host
            and owner in self.office.municipalities
        )

    def grants(self, grant: Grant, owner: str | None) -> bool:
        """Does this grant open the class for this caseworker (consent aside)?"""
        if grant.unless_protection and self.card.protection == grant.unless_protection:
            return False
        if grant.roles_any:
            return bool(grant.roles_any & self.worker.roles)
        return {
            "everyone": True,
            "stat": self.worker.employer == "stat",
            "kommune": self.worker.municipality is not None,
            "owner_side": self.owner_side(owner),
        }.get(grant.who or "", False)

    def allowed(self, cls: str, owner: str | None = None) -> tuple[bool, str | None]:
        """(visible, the consent scope that would open it if not)."""
        fc: FieldClass | None = self.policy.classes.get(cls)
        if fc is None:
            return False, None  # deny by default
        would_open = None
        for grant in fc.grants:
            if not self.grants(grant, owner):
                continue
            if grant.consent is None or grant.consent in self.scopes:
                return True, None
            would_open = would_open or grant.consent
        return False, would_open

    def value(self, cls: str, path: str, value: Any, owner: str | None = None) -> Any:
        visible, consent = self.allowed(cls, owner)
        if visible:
            return _json(value)
        reason = (
            self.policy.classes[cls].withheld_reason
            if cls in self.policy.classes
            else "ingen_regel"
        )
        self.withheld.append(Withheld(path, cls, reason, consent))
        return {"withheld": True, "reason": reason, "rule": cls, "consent": consent}


def gate(worker: Caseworker, card: Card, policy: Policy, *, purpose: str | None = None) -> Decision:
    """May this caseworker open (or act on) this card at all? The policy's gate steps in order;
    the first that fails denies. A permitted decision lists the privileged roles used."""
    privileged: list[str] = []
    for step in policy.gate:
        applies = (
            (step.when_protection is None or card.protection == step.when_protection)
            and (not step.when_skjermet or card.skjermet)
            and (
                not step.when_own_card or (worker.pid is not None and worker.pid in card.all_idents)
            )
            and (
                not step.when_relative
                or (worker.pid is not None and card.kin.get(worker.pid) in step.when_relative)
            )
        )
        if not applies:
            continue
        conditional = step.when_protection or step.when_skjermet
        if step.when_own_card or step.when_relative or not (step.require_roles_any & worker.roles):
            return Decision(False, policy.version, [step.code], step.message)
        if conditional:
            privileged.append(step.code)
            if step.purpose_required and not meaningful(purpose):
                return Decision(
                    False,
                    policy.version,
                    [policy.purpose_missing_code],
                    policy.purpose_missing_message,
                )
    if worker.office not in policy.offices:
        return Decision(
            False, policy.version, ["ukjent_kontor"], "Kontoret ditt er ikke i policyen."
        )
    return Decision(True, policy.version, [], None, privileged_use=privileged)


def evaluate(
    worker: Caseworker,
    card: Card,
    consents: list[Consent],
    policy: Policy,
    *,
    purpose: str | None = None,
    now: dt.datetime,
) -> Decision:
    """Decide whether the card may be opened and build the view this caseworker may see."""
    opened = gate(worker, card, policy, purpose=purpose)
    ctx = _Context(worker, card, consents, policy, now)
    if not opened.permitted:
        # A card that would show this caseworker nothing (say, one municipality's client whom
        # the feed marks kode 6) is answered as an unknown person, as it would be unmarked:
        # the refusal would tell them that the person is some office's client. The gate's
        # code stays in the decision for the audit event.
        if opened.reason_codes[0] in PERSON_STEPS and _nothing_shown(_view(ctx)):
            return Decision(True, policy.version, opened.reason_codes, None, absent=True)
        return opened
    view = _view(ctx)
    codes = sorted({w.reason for w in ctx.withheld})
    return Decision(
        True,
        policy.version,
        codes,
        None,
        ctx.withheld,
        opened.privileged_use,
        view,
        absent=_nothing_shown(view),
    )


def _nothing_shown(view: dict[str, Any]) -> bool:
    """True when the view holds no value and no withheld marker: a card with nothing on it."""
    identity, follow_up = view["identity"], view["follow_up"]
    return not (
        any(identity.values())
        or any(view["contact"].values())
        or any(follow_up.values())
        or view["state_benefits"]
        or view["municipal_services"]
        or view["withheld"]
    )


# -- building the view -------------------------------------------------------------------------


def _view(ctx: _Context) -> dict[str, Any]:
    card = ctx.card
    services, hidden_records = _services(ctx)
    registers = {_record_of(s) for s in card.sources if s.register != FEED}
    if not registers or registers <= hidden_records:
        # Every register record is hidden (or there is none): the feed's name and dates would
        # tell that this person has a card, i.e. is some office's client.
        hidden_records = hidden_records | {
            _record_of(s) for s in card.sources if s.register == FEED
        }

    def sourced(values: list[Sourced]) -> list[dict[str, Any]]:
        return [_sourced(s) for s in values if _record_of(s.source) not in hidden_records]

    contact_visible, _ = ctx.allowed("contact")
    fields = {k: sourced(v) for k, v in card.fields.items()}
    view: dict[str, Any] = {
        "card_id": card.card_id,
        "night": card.night,
        "pending_review": card.pending_review,
        "identity": {
            "idents": sourced(card.idents),
            "earlier_idents": sourced(card.earlier_idents),
            "names": sourced(card.names),
            "birth_date": fields.get("birth_date", []),
            "death_date": fields.get("death_date", []),
        },
        "contact": {},
        "follow_up": {
            "office_and_veileder": [
                {"field": s.value[0], **_sourced(Sourced(s.value[1], s.source))}  # type: ignore[index]
                for s in card.follow_up
            ],
            "measures": [
                {
                    "code": m.code,
                    "status": m.status,
                    "from": _json(m.from_date),
                    "to": _json(m.to_date),
                    "organiser": m.organiser,
                    "source": _source(m.source),
                }
                for m in card.measures
            ],
        },
        "state_benefits": [_benefit(ctx, n, b) for n, b in enumerate(card.state_benefits)],
        "municipal_services": services,
    }
    for name in ("address", "postnr", "poststed", "kommunenr", "phone"):
        values = fields.get(name, [])
        if not values:
            view["contact"][name] = []
        elif contact_visible:
            view["contact"][name] = values
        else:
            view["contact"][name] = ctx.value("contact", f"contact.{name}", None)
    visible_fields = {
        name: values
        for name, values in card.fields.items()
        if contact_visible or name not in ("address", "postnr", "poststed", "kommunenr", "phone")
    }
    view["conflicts"] = [
        name
        for name in CONFLICT_FIELDS
        if len(
            {
                comparable(name, s.value)
                for s in visible_fields.get(name, [])
                if _record_of(s.source) not in hidden_records
            }
        )
        > 1
    ]
    view["withheld"] = [
        {"field": w.field, "rule": w.rule, "reason": w.reason, "consent": w.consent}
        for w in ctx.withheld
    ]
    return view


def _benefit(ctx: _Context, n: int, b: BenefitLine) -> dict[str, Any]:
    path = f"state_benefits[{n}]"
    line: dict[str, Any] = {
        "register": b.register,
        "code": ctx.value("state_benefit_summary", f"{path}.code", b.code),
        "status": ctx.value("state_benefit_summary", f"{path}.status", b.status),
        "from": ctx.value("state_benefit_summary", f"{path}.from", b.from_date),
        "to": ctx.value("state_benefit_summary", f"{path}.to", b.to_date),
        "source": _source(b.source),
    }
    for name, value in (
        ("daily_rate", b.daily_rate),
        ("monthly_amount", b.monthly_amount),
        ("grade", b.grade),
    ):
        line[name] = (
            None if value is None else ctx.value("state_benefit_amounts", f"{path}.{name}", value)
        )
    line["diagnosis"] = (
        None if b.diagnosis is None else ctx.value("health", f"{path}.diagnosis", b.diagnosis)
    )
    if b.justification is None:
        line["justification"] = None
    else:
        cls = "health" if b.code in HEALTH_JUSTIFICATION_CODES else "state_benefit_amounts"
        line["justification"] = ctx.value(cls, f"{path}.justification", b.justification)
    return line


def _services(ctx: _Context) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """Municipal service lines as this caseworker may see them, and the municipal records whose
    values must be left off the card because none of their services is shown."""
    included = ctx.office.services if ctx.office else frozenset()
    shown_records: set[tuple[str, str]] = set()
    municipal_records = {_record_of(s) for s in ctx.card.sources if s.register == "kommune"}
    lines: list[dict[str, Any]] = []
    for s in ctx.card.municipal_services:
        if s.service not in included:
            continue  # outside the partnership agreement: absent, with no marker
        path = f"municipal_services[{len(lines)}]"
        cls = "substance_abuse" if s.service == "RUS" else "municipal_service"
        visible, _ = ctx.allowed(cls, s.owner_kommune)
        if not visible and cls == "substance_abuse":
            continue  # that a person receives RUS is itself the secret: absent, no marker
        if not visible:
            lines.append(ctx.value(cls, path, None, s.owner_kommune))
            continue
        shown_records.add(_record_of(s.source))
        text_cls = "substance_abuse" if s.service == "RUS" else "municipal_free_text"
        lines.append(
            {
                "register": s.register,
                "owner_kommune": s.owner_kommune,
                "service": s.service,
                "from": _json(s.from_date),
                "to": _json(s.to_date),
                "monthly_amount": _json(s.monthly_amount),
                "free_text": None
                if s.free_text is None
                else ctx.value(text_cls, f"{path}.free_text", s.free_text, s.owner_kommune),
                "source": _source(s.source),
            }
        )
    return lines, municipal_records - shown_records


def _record_of(source: Source) -> tuple[str, str]:
    return source.register, source.source_key


def _source(source: Source) -> dict[str, Any]:
    return {"register": source.register, "location": source.location, "night": source.night}


def _sourced(s: Sourced) -> dict[str, Any]:
    return {"value": _json(s.value), "source": _source(s.source)}


def _json(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


__all__ = ["Caseworker", "Consent", "Decision", "Withheld", "evaluate", "gate"]
