"""A loaded, validated policy: offices, the gate and the field classes, and its version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Who = Literal["everyone", "stat", "kommune", "owner_side"]


@dataclass(frozen=True, slots=True)
class Office:
    name: str
    municipalities: frozenset[str]
    host: str
    services: frozenset[str]  # municipal services the partnership agreement includes


@dataclass(frozen=True, slots=True)
class GateStep:
    code: str
    message: str
    require_roles_any: frozenset[str] = frozenset()
    when_protection: str | None = None
    when_skjermet: bool = False
    when_own_card: bool = False
    # The card's person is the caseworker's relative (by ``pid``, from the feed): one of these
    # relations (parent, child, sibling, partner, coparent). Like ``when_own_card``, no role
    # opens it.
    when_relative: frozenset[str] = frozenset()
    purpose_required: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """One way to see a field class: who, perhaps with a consent, perhaps not for some people."""

    who: Who | None = None
    roles_any: frozenset[str] = frozenset()
    consent: str | None = None
    unless_protection: str | None = None


@dataclass(frozen=True, slots=True)
class FieldClass:
    name: str
    withheld_reason: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    version: str  # sha256 over the policy files: every decision names it
    offices: dict[str, Office]
    gate: tuple[GateStep, ...]
    purpose_missing_code: str
    purpose_missing_message: str
    consent_scopes: frozenset[str]
    consent_max_months: int
    classes: dict[str, FieldClass] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name → text, for diffs between versions

    @property
    def short_version(self) -> str:
        return self.version[:12]
