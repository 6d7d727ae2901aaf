"""The canonical records every register adapter produces.

Three registers describe the same people in three shapes. Adapters turn each shape into these
typed records, each carrying the source key and the exact source location it came from, so that
reconciliation, the card and the steward's quarantine view never need to know a file format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from personkort.feed.records import FeedSnapshot


class Register(StrEnum):
    ARENA = "arena"
    INFOTRYGD = "infotrygd"
    KOMMUNE = "kommune"
    FOLKEREGISTER = "folkeregister"  # the population register's feed: not a register of cards


# The three registers every night needs; the feed is read beside them, and a night without it
# is published with the feed's last state (shared/spec/folkeregister.md).
REGISTERS = (Register.ARENA, Register.INFOTRYGD, Register.KOMMUNE)


class Protection(StrEnum):
    """Address protection, strictest first. Names match the answer key's ``adressebeskyttelse``."""

    STRENGT_FORTROLIG = "STRENGT_FORTROLIG"
    FORTROLIG = "FORTROLIG"


class MunicipalServiceCode(StrEnum):
    OKSOS = "OKSOS"  # økonomisk sosialhjelp
    KVP = "KVP"  # kvalifiseringsprogrammet
    BOLIG = "BOLIG"  # midlertidig botilbud
    RUS = "RUS"  # rustiltak
    GJELD = "GJELD"  # økonomisk rådgivning


class _Compact:
    """Pickles as its class and field values. A night's extract crosses process boundaries
    (the Arena reader's process, the DAG's extract tasks); dataclasses' own pickling of frozen
    slotted classes looks up the fields for every record and took 6.5 s for Arena's 400 k."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return type(self), field_values(type(self))(self)


@cache
def field_values(
    cls: type, skip: frozenset[str] = frozenset()
) -> Callable[[object], tuple[Any, ...]]:
    """A function reading a record type's field values (but ``skip``) into a tuple in one call:
    pickling and fingerprinting do this for every record of every night, so the fields are
    looked up once per type, not once per record."""
    names = [f.name for f in fields(cls) if f.name not in skip]
    getter = attrgetter(*names)
    return getter if len(names) > 1 else lambda record: (getter(record),)


@dataclass(frozen=True, slots=True)
class PersonRecord(_Compact):
    """One register's description of one person, keyed as the link export keys it."""

    register: Register
    source_key: str
    location: str
    ident: str | None  # normalised digits as the register holds them; may fail validation
    surname: str
    given_names: str
    middle_name: str | None = None
    name_raw: str | None = None  # the name field as written, where the register has one field
    birth_date: dt.date | None = None
    death_date: dt.date | None = None
    address: str | None = None
    postnr: str | None = None
    poststed: str | None = None
    kommunenr: str | None = None  # where the person lives, as the register says
    phone: str | None = None
    protection: Protection | None = None
    skjermet: bool | None = None  # None: this register does not know
    owner_kommune: str | None = None  # municipal records: the municipality that owns the data
    ident_type: str | None = None  # FNR / DNR where the register states it
    nav_office: str | None = None
    veileder: str | None = None
    formidlingsgruppe: str | None = None
    kvalifiseringsgruppe: str | None = None
    registered_at: dt.datetime | None = None
    changed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class IdentHistory(_Compact):
    """An earlier identity number a register keeps for a person (Arena ``PERSON_IDENT_HIST``)."""

    register: Register
    source_key: str
    location: str
    ident: str
    valid_from: dt.date | None
    valid_to: dt.date | None


@dataclass(frozen=True, slots=True)
class StateBenefit(_Compact):
    """An Arena decision (vedtak) or an Infotrygd benefit other than ``SH``."""

    register: Register
    source_key: str  # the person's source key
    location: str
    code: str  # DAGP AAP TILTPENG | SP UF AP BT EF
    from_date: dt.date
    to_date: dt.date | None
    status: str | None = None  # Arena IVERK / AVSLU
    daily_rate: Decimal | None = None  # Arena DAGSATS, kroner
    monthly_amount: Decimal | None = None  # Infotrygd BELOP, kroner
    grade: int | None = None  # Infotrygd GRAD, percent
    diagnosis: str | None = None  # Infotrygd DIAGNOSE (ICPC-2): health information
    justification: str | None = None  # Arena BEGRUNNELSE: health information for AAP
    changed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Measure(_Compact):
    """An Arena labour-market measure (tiltak) the person takes part in."""

    register: Register
    source_key: str
    location: str
    code: str
    status: str
    from_date: dt.date | None
    to_date: dt.date | None
    organiser: str | None
    changed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MunicipalService(_Compact):
    """A municipal service decision: Sosio, Flyt, or an Infotrygd ``SH`` row paid on a
    municipality's behalf. Always the owning municipality's data, whoever holds it."""

    register: Register
    system: str  # sosio | flyt | infotrygd
    source_key: str
    location: str
    owner_kommune: str
    service: MunicipalServiceCode
    from_date: dt.date
    to_date: dt.date | None
    monthly_amount: Decimal | None = None
    caseworker: str | None = None
    free_text: str | None = None  # merknad / begrunnelse: the social worker's own notes


@dataclass(frozen=True, slots=True)
class Quarantined(_Compact):
    """A record that could not be read, kept whole with where it came from and why."""

    register: Register
    location: str
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class Finding(_Compact):
    """A record that was read but looks wrong; reported to the steward, never silently fixed.

    ``detail`` never contains an identity number: findings reach logs and screens."""

    register: Register
    location: str
    kind: str
    detail: str


@dataclass(slots=True)
class SourceCount:
    """Records in, accepted and quarantined for one source (a table, a file)."""

    register: Register
    source: str
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    findings: int = 0

    @property
    def conserved(self) -> bool:
        return self.read == self.accepted + self.quarantined


@dataclass(frozen=True, slots=True)
class Refusal:
    """A whole source refused (e.g. an Infotrygd file whose trailer does not add up)."""

    register: Register
    source: str
    reason: str


@dataclass(slots=True)
class Extract:
    """Everything one or more adapters read from a drop folder."""

    persons: list[PersonRecord] = field(default_factory=list)
    ident_history: list[IdentHistory] = field(default_factory=list)
    state_benefits: list[StateBenefit] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    municipal_services: list[MunicipalService] = field(default_factory=list)
    quarantine: list[Quarantined] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counts: list[SourceCount] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # record key → content fingerprint (personkort.fingerprint), where the reader made them
    fingerprints: dict[str, str] = field(default_factory=dict)
    # The Folkeregister snapshot, if the drop held one that could be read; if not, why not
    # (a note for the stewards and the cards, never a reason to stop the night).
    feed: FeedSnapshot | None = None
    feed_refusal: Refusal | None = None

    def extend(self, other: Extract) -> None:
        """Add another extract's records to this one."""
        self.persons += other.persons
        self.ident_history += other.ident_history
        self.state_benefits += other.state_benefits
        self.measures += other.measures
        self.municipal_services += other.municipal_services
        self.quarantine += other.quarantine
        self.findings += other.findings
        self.counts += other.counts
        self.refusals += other.refusals
        self.feed = other.feed or self.feed
        self.feed_refusal = other.feed_refusal or self.feed_refusal
        both = self.fingerprints.keys() & other.fingerprints.keys()
        self.fingerprints.update(other.fingerprints)
        for key in both:  # one record from two sources: the night fingerprints it whole
            del self.fingerprints[key]
