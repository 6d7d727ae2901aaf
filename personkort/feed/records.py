"""The feed's typed records: one registered person of the snapshot, and one event of the day.

Field names follow the spec's PDL model, translated; every record keeps where it came from
(``folkeregister:line:N``, ``hendelser_…jsonl:line:N`` or ``api:<trace>:N``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from personkort.records import Protection, Register, _Compact

FEED = Register.FOLKEREGISTER.value  # the feed's name wherever a register's would stand


class Gradering(StrEnum):
    UGRADERT = "UGRADERT"
    FORTROLIG = "FORTROLIG"
    STRENGT_FORTROLIG = "STRENGT_FORTROLIG"
    STRENGT_FORTROLIG_UTLAND = "STRENGT_FORTROLIG_UTLAND"


def protection_of(gradering: Gradering | str | None) -> Protection | None:
    """The card's marker for a gradering: ``STRENGT_FORTROLIG_UTLAND`` is kode 6 too."""
    if gradering in (Gradering.STRENGT_FORTROLIG, Gradering.STRENGT_FORTROLIG_UTLAND):
        return Protection.STRENGT_FORTROLIG
    if gradering == Gradering.FORTROLIG:
        return Protection.FORTROLIG
    return None


def strictest(*markers: Protection | str | None) -> Protection | None:
    """The strictest of some markers (None: none of them protects)."""
    found = {Protection(m) for m in markers if m}
    if Protection.STRENGT_FORTROLIG in found:
        return Protection.STRENGT_FORTROLIG
    return Protection.FORTROLIG if Protection.FORTROLIG in found else None


class Role(StrEnum):
    """A relation's kind, as the related person stands to the one whose record holds it."""

    MOR = "MOR"
    FAR = "FAR"
    MEDMOR = "MEDMOR"
    BARN = "BARN"
    GIFT = "GIFT"
    REGISTRERT_PARTNER = "REGISTRERT_PARTNER"
    SEPARERT = "SEPARERT"  # still married: the spouse is still a spouse


PARENT_ROLES = frozenset({Role.MOR, Role.FAR, Role.MEDMOR})
PARTNER_ROLES = frozenset({Role.GIFT, Role.REGISTRERT_PARTNER, Role.SEPARERT})


# The snapshot's records are named tuples: a million-person snapshot makes five million of
# them, and a frozen dataclass costs several times a tuple to build.


class FeedIdent(NamedTuple):
    number: str  # 11 digits as the feed writes them
    type: str  # FNR | DNR | (anything else the register uses, kept as written)
    in_use: bool  # status I_BRUK (else OPPHOERT)


class FeedRelation(NamedTuple):
    """``related`` stands to the record's person as ``role`` (MOR: the related is the mother).
    The related number may be one the snapshot does not hold: it is still a relation."""

    related: str
    role: Role


class FeedPerson(NamedTuple):
    """One line of the nightly snapshot."""

    location: str  # folkeregister:line:N
    idents: tuple[FeedIdent, ...]  # exactly one in use
    given_names: str
    middle_name: str | None
    surname: str
    birth_date: dt.date | None
    gradering: Gradering
    death_date: dt.date | None
    relations: tuple[FeedRelation, ...]
    changed_at: dt.datetime | None  # sistEndret

    @property
    def key(self) -> str:
        """The number in use: the person's key in the feed's tables."""
        for ident in self.idents:  # a loop, not next(genexpr): it runs for every row written
            if ident.in_use:
                return ident.number
        raise ValueError("a feed person without a number in use")

    @property
    def numbers(self) -> frozenset[str]:
        return frozenset(i.number for i in self.idents)

    @property
    def protection(self) -> Protection | None:
        return protection_of(self.gradering)


class EventKind(StrEnum):
    ADRESSEBESKYTTELSE = "ADRESSEBESKYTTELSE_V1"
    FOLKEREGISTERIDENTIFIKATOR = "FOLKEREGISTERIDENTIFIKATOR_V1"
    DOEDSFALL = "DOEDSFALL_V1"
    FORELDERBARNRELASJON = "FORELDERBARNRELASJON_V1"
    SIVILSTAND = "SIVILSTAND_V1"


class Change(StrEnum):
    OPPRETTET = "OPPRETTET"  # new
    KORRIGERT = "KORRIGERT"  # replaces ``replaces``
    ANNULLERT = "ANNULLERT"  # cancels ``replaces``
    OPPHOERT = "OPPHOERT"  # the fact no longer holds


@dataclass(frozen=True, slots=True)
class FeedEvent(_Compact):
    """One event of the day. Exactly one payload field is set, the one ``kind`` names (none
    for an ``ANNULLERT``, whose payload the spec lets the sender repeat or leave out)."""

    event_id: str  # hendelseId: the same id twice is the same event
    created: dt.datetime  # opprettet, with its offset
    idents: tuple[str, ...]  # every number of the person, the one in use first
    kind: EventKind
    change: Change
    replaces: str | None  # tidligereHendelseId, for KORRIGERT and ANNULLERT
    location: str
    gradering: Gradering | None = None
    ident: FeedIdent | None = None
    death_date: dt.date | None = None
    relation: FeedRelation | None = None


@dataclass(slots=True)
class FeedSnapshot:
    """A night's snapshot as read: the persons whose lines were parsed, when it was taken, the
    digest of each parsed person's line (by person key), and the digests of the lines not
    parsed because the store already holds them unchanged. The store writes only the persons
    that changed and closes those whose line is gone."""

    file: str
    as_of: dt.datetime  # the later of the file's date (00:00 Oslo) and the newest sistEndret
    persons: list[FeedPerson]
    digests: dict[str, str]
    unchanged: list[str] = field(default_factory=list)
    released: int = 0  # lines let go once the store held them (``release``)
    # the map of stored digests the lines were skipped against (that very object), if any
    read_against: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def lines(self) -> int:
        return len(self.persons) + len(self.unchanged) + self.released

    def __getstate__(self) -> tuple[None, dict[str, object]]:
        """Pickled (the DAG keeps a step's extract) without ``read_against``: a million
        entries, and in another process no longer that very object anyway. The state has
        the default form of a class with slots, which code before this field reads too."""
        return None, {n: getattr(self, n) for n in self.__slots__ if n != "read_against"}

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        _, values = state
        self.read_against = None
        for name, value in values.items():
            if name in self.__slots__ and name != "read_against":
                object.__setattr__(self, name, value)

    def release(self) -> None:
        """Let the persons and digests go once the store holds them: a full night held a
        million persons through reconciliation, which does not need them. ``lines`` still
        counts every line; a released snapshot cannot be compared with the store again
        (``personkort.store.feed.snapshot_changes`` refuses it)."""
        self.released = self.lines
        self.persons, self.digests, self.unchanged = [], {}, []
        self.read_against = None
