"""Request and response bodies of the API (the published OpenAPI document is made from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personkort.purpose import MAX_LENGTH

# One limit for a purpose on every path; what counts as a purpose is personkort.purpose's rule.
Purpose = Field(
    default=None,
    max_length=MAX_LENGTH,
    description="Purpose of the lookup: required to open kode 6 and skjermet cards",
)


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(
        min_length=1, max_length=40, description="Fødselsnummer or D-nummer, as typed"
    )
    purpose: str | None = Purpose


class CardOpen(BaseModel):
    """Opening a card by its id with a stated purpose (never in the URL)."""

    model_config = ConfigDict(extra="forbid")
    purpose: str | None = Purpose


class PurposeOnly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: str | None = Purpose


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WithheldValue(_Shape):
    """A value this caseworker may not see: why, under which rule, and the consent scope that
    would open it (null: no consent does)."""

    withheld: Literal[True]
    reason: str
    rule: str
    consent: str | None


class SourceRef(_Shape):
    register_name: str = Field(alias="register")
    location: str
    night: int


class SourcedValue(_Shape):
    """One register's value for a field, with where it came from."""

    value: str | int | None
    source: SourceRef


class Identity(_Shape):
    idents: list[SourcedValue]
    earlier_idents: list[SourcedValue]
    names: list[SourcedValue]
    birth_date: list[SourcedValue]
    death_date: list[SourcedValue]


Values = list[SourcedValue] | WithheldValue


class Contact(_Shape):
    address: Values
    postnr: Values
    poststed: Values
    kommunenr: Values
    phone: Values


class FollowUpValue(_Shape):
    field: str
    value: str | int | None
    source: SourceRef


class Measure(_Shape):
    code: str
    status: str
    from_: str | None = Field(alias="from")
    to: str | None
    organiser: str | None
    source: SourceRef


class FollowUp(_Shape):
    office_and_veileder: list[FollowUpValue]
    measures: list[Measure]


class StateBenefit(_Shape):
    register_name: str = Field(alias="register")
    code: str | WithheldValue
    status: str | WithheldValue | None
    from_: str | WithheldValue = Field(alias="from")
    to: str | WithheldValue | None
    source: SourceRef
    daily_rate: str | WithheldValue | None
    monthly_amount: str | WithheldValue | None
    grade: int | WithheldValue | None
    diagnosis: str | WithheldValue | None
    justification: str | WithheldValue | None


class MunicipalService(_Shape):
    register_name: str = Field(alias="register")
    owner_kommune: str
    service: str
    from_: str = Field(alias="from")
    to: str | None
    monthly_amount: str | None
    free_text: str | WithheldValue | None
    source: SourceRef


class WithheldField(_Shape):
    field: str
    rule: str
    reason: str
    consent: str | None


class CardConsent(_Shape):
    id: int
    scope: str
    valid_from: dt.date
    valid_to: dt.date
    in_force: bool
    form_reference: str


class SourceState(_Shape):
    """One register the card shows values from: how old its data is, and whether tonight's
    extract of it was read (``missing``, ``refused``, ``events_unreadable``: may be old)."""

    register_name: str = Field(alias="register")
    data_from: dt.date | None
    tonight: str
    may_be_old: bool
    note: str | None


class CardResponse(_Shape):
    """The card as this caseworker may see it. A withheld value is a WithheldValue; an empty
    value is null or []; what this caseworker may not know exists is absent altogether."""

    card_id: str
    night: int
    pending_review: bool
    identity: Identity
    contact: Contact
    follow_up: FollowUp
    state_benefits: list[StateBenefit]
    municipal_services: list[MunicipalService | WithheldValue]
    conflicts: list[str]
    withheld: list[WithheldField]
    consents: list[CardConsent]
    sources: list[SourceState]
    policy_version: str
    trace_id: str


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(min_length=1, max_length=40)
    scope: Literal["okonomi", "helse", "sosial"]
    valid_from: dt.date
    valid_to: dt.date
    form_reference: str = Field(min_length=1, max_length=200)
    purpose: str | None = Purpose


class ConsentSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(min_length=1, max_length=40)
    purpose: str | None = Purpose


class ConsentOut(BaseModel):
    id: int
    office: str
    scope: str
    valid_from: dt.date
    valid_to: dt.date
    form_reference: str
    registered_by: str
    registered_at: dt.datetime
    withdrawn_at: dt.datetime | None
    withdrawn_by: str | None
    in_force: bool


class DecisionIn(BaseModel):
    """A steward's answer on a pair: ``same`` (true/false), or ``outcome`` (``same``,
    ``not_same`` or ``later``; "later" needs a ``reason``). ``seen`` is the ruling the steward
    saw (``ReviewOut.ruling_id``, or ``"none"``): a pair ruled on since is refused with 409."""

    model_config = ConfigDict(extra="forbid")
    record_a: str = Field(min_length=1, max_length=80)
    record_b: str = Field(min_length=1, max_length=80)
    same: bool | None = None
    outcome: Literal["same", "not_same", "later"] | None = None
    reason: str | None = Field(default=None, max_length=1000)
    seen: str | None = Field(default=None, max_length=20, pattern=r"^(none|[0-9]{1,18})$")

    @model_validator(mode="after")
    def _one_answer(self) -> DecisionIn:
        if (self.same is None) == (self.outcome is None):
            raise ValueError("give exactly one of same and outcome")
        return self

    @property
    def answer(self) -> str:
        if self.outcome is not None:
            return self.outcome
        return "same" if self.same else "not_same"


class RulingOut(BaseModel):
    id: int
    same: bool
    steward: str
    reason: str | None
    decided_at: dt.datetime


class DeferralOut(BaseModel):
    steward: str
    at: dt.datetime | None
    comment: str


class NightOut(BaseModel):
    id: int
    drop_dir: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, Any] | None
    report: dict[str, Any] | None
    error: str | None
    served: bool


class QuarantineOut(BaseModel):
    """A quarantined record; ``raw`` is the line as the register sent it (stewards only)."""

    register_name: str = Field(serialization_alias="register")
    location: str
    reason: str
    raw: str | None = None


class ReviewOut(BaseModel):
    """A queued pair; ``ruling_id`` is what a decision on it passes as ``seen``."""

    id: int | None = None
    record_key: str
    candidate_key: str
    score: float
    evidence: dict[str, Any]
    state: Literal["open", "later", "decided"] = "open"
    ruling_id: str = "none"
    ruling: RulingOut | None = None
    deferral: DeferralOut | None = None
