"""Request and response bodies of the API (the published OpenAPI document is made from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(
        min_length=1, max_length=40, description="Fødselsnummer or D-nummer, as typed"
    )
    purpose: str | None = Field(default=None, max_length=500, description="Purpose of the lookup")


class CardResponse(BaseModel):
    """The card as this caseworker may see it. A withheld value is an object
    ``{"withheld": true, "reason", "rule", "consent"}``; an empty value is null or []."""

    model_config = ConfigDict(extra="allow")
    card_id: str
    night: int
    pending_review: bool
    identity: dict[str, Any]
    contact: dict[str, Any]
    follow_up: dict[str, Any]
    state_benefits: list[dict[str, Any]]
    municipal_services: list[dict[str, Any]]
    conflicts: list[str]
    withheld: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    policy_version: str
    trace_id: str


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(min_length=1, max_length=40)
    scope: Literal["okonomi", "helse", "sosial"]
    valid_from: dt.date
    valid_to: dt.date
    form_reference: str = Field(min_length=1, max_length=200)


class ConsentSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ident: str = Field(min_length=1, max_length=40)


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
    model_config = ConfigDict(extra="forbid")
    record_a: str = Field(min_length=1, max_length=80)
    record_b: str = Field(min_length=1, max_length=80)
    same: bool
    reason: str | None = Field(default=None, max_length=1000)


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
    register_name: str = Field(serialization_alias="register")
    location: str
    reason: str


class ReviewOut(BaseModel):
    record_key: str
    candidate_key: str
    score: float
    evidence: dict[str, Any]
