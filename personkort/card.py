"""The person card: everything the registers say about one person, each value with its source.

Values are never merged into one: when registers disagree (two birth dates, two addresses) every
value is kept with the register, source key, location and night it came from, and the field is
listed in ``conflicts`` so the screen can say so. What a caseworker may see of a card is the
policy engine's decision, made on this whole card.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from personkort import kommuner
from personkort.records import Register


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value came from."""

    register: str
    source_key: str
    location: str
    night: int


@dataclass(frozen=True, slots=True)
class Sourced:
    """One register's value for a field."""

    value: object
    source: Source


@dataclass(frozen=True, slots=True)
class BenefitLine:
    register: str
    code: str
    status: str | None
    from_date: dt.date
    to_date: dt.date | None
    daily_rate: Decimal | None
    monthly_amount: Decimal | None
    grade: int | None
    diagnosis: str | None
    justification: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class MeasureLine:
    code: str
    status: str
    from_date: dt.date | None
    to_date: dt.date | None
    organiser: str | None
    source: Source


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """A municipal service, owned by ``owner_kommune`` whichever register holds it."""

    register: str
    system: str
    owner_kommune: str
    service: str
    from_date: dt.date
    to_date: dt.date | None
    monthly_amount: Decimal | None
    caseworker: str | None
    free_text: str | None
    source: Source


# Registers whose identity numbers are verified: a state register checked the person behind them,
# or the population register's feed holds them (personkort/feed/overlay.py says when a card is
# anchored to a feed person). A number held only through a hand-typed municipal record may be a
# relative's or a stranger's.
STATE_REGISTERS = frozenset({Register.ARENA.value, Register.INFOTRYGD.value})
VERIFYING_REGISTERS = STATE_REGISTERS | {Register.FOLKEREGISTER.value}

# Fields whose values are compared across registers for conflicts, and how to compare them.
CONFLICT_FIELDS = ("birth_date", "death_date", "address", "postnr", "kommunenr")


@dataclass(slots=True)
class Card:
    card_id: str
    night: int
    protection: str | None
    skjermet: bool
    pending_review: bool
    idents: list[Sourced] = field(default_factory=list)  # current numbers, per record
    earlier_idents: list[Sourced] = field(default_factory=list)
    names: list[Sourced] = field(default_factory=list)  # "Given Middle Surname"
    fields: dict[str, list[Sourced]] = field(default_factory=dict)  # birth_date, address, ...
    follow_up: list[Sourced] = field(default_factory=list)  # Arena office, veileder, groups
    state_benefits: list[BenefitLine] = field(default_factory=list)
    measures: list[MeasureLine] = field(default_factory=list)
    municipal_services: list[ServiceLine] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    # What the looking caseworker is to the card's person, by the caseworker's pid (parent,
    # child, sibling, partner, coparent): set per lookup from the caseworker's relatives in the
    # feed, the relatives gate's evidence (personkort/feed/kinship.py). Empty in the cache.
    kin: dict[str, str] = field(default_factory=dict)

    @property
    def conflicts(self) -> list[str]:
        """Fields where the registers state more than one value."""
        return [
            name
            for name in CONFLICT_FIELDS
            if len({comparable(name, s.value) for s in self.fields.get(name, [])}) > 1
        ]

    @property
    def all_idents(self) -> set[str]:
        return {str(s.value) for s in (*self.idents, *self.earlier_idents)}

    @property
    def verified_idents(self) -> set[str]:
        """The numbers a state register holds for this person: the only ones a consent (or
        anything else that must belong to the person) may rest on."""
        return {
            str(s.value)
            for s in (*self.idents, *self.earlier_idents)
            if s.source.register in VERIFYING_REGISTERS
        }


def comparable(name: str, value: object) -> object:
    if name == "kommunenr":  # 1601 and 5001 are both Trondheim
        return kommuner.current(str(value)) or value
    return value.casefold().strip() if isinstance(value, str) else value
