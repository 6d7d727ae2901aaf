"""Putting the feed's facts onto a served card, at lookup.

A card is built from the registers each night and cached for the night; the feed's facts are
laid over it at every lookup, so a kode 6 the feed raised an hour ago counts now, in every
process (spec: raising is urgent). What the feed adds:

- **protection**: the strictest of the card's and of every feed person a number on the card
  leads to, and of the day's raises. Raising is always safe, so even a number a municipal
  system typed by hand (perhaps a relative's) raises the card: nothing fails open.
- **identity**, only from the persons the card is *anchored* to: those a state register's
  number on the card leads to, or a municipal record's number whose record agrees with the
  feed on birth date and name, or on given name and surname where it states no birth date (a
  hand-typed number is not trusted more than before). Their
  numbers are verified (a consent may rest on them), their registered names and birth dates
  are shown beside the registers', and so is a death, the snapshot's or the day's.

Relatives are not laid over the card: the relatives gate asks them from the looking
caseworker's side (``store.feed.kin_of``, once per caseworker, not once per card).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from personkort.card import STATE_REGISTERS, Card, Source, Sourced
from personkort.feed.day import DayState
from personkort.feed.records import FEED, FeedPerson, strictest
from personkort.names import tokens


@dataclass(frozen=True, slots=True)
class FeedFacts:
    """What the store holds from the feed about one card's people."""

    snapshot_night: int | None  # the night whose snapshot is in force (None: never one)
    as_of: dt.datetime | None  # when that snapshot was taken
    anchored: tuple[FeedPerson, ...] = ()
    others: tuple[FeedPerson, ...] = ()  # reached only through unverified numbers
    day: DayState | None = None  # the day's events for the anchored persons
    day_others: DayState | None = None  # the day's events for the other numbers


def anchored(
    card: Card, persons: Iterable[FeedPerson]
) -> tuple[list[FeedPerson], list[FeedPerson]]:
    """Split the feed persons a card's numbers lead to into those the card is anchored to and
    the others."""
    held: dict[str, list[Sourced]] = {}
    for s in (*card.idents, *card.earlier_idents):
        held.setdefault(str(s.value), []).append(s)
    births = {
        (s.source.register, s.source.source_key): s.value for s in card.fields.get("birth_date", [])
    }
    names = {(s.source.register, s.source.source_key): str(s.value) for s in card.names}
    yes, no = [], []
    for person in persons:
        sourced = [s for n in person.numbers for s in held.get(n, ())]
        if any(
            s.source.register in STATE_REGISTERS
            or _agrees(person, births.get(_key(s)), names.get(_key(s), ""))
            for s in sourced
        ):
            yes.append(person)
        else:
            no.append(person)
    return yes, no


def _key(s: Sourced) -> tuple[str, str]:
    return s.source.register, s.source.source_key


def _agrees(person: FeedPerson, birth: object, name: str) -> bool:
    """Does a municipal record describe this registered person (its number may be typed)? A
    relative's number typed by mistake names someone born another day, or with another given
    name: the record's birth date must be the person's and a name in common, or, where the
    record states no birth date, both a given name and a surname in common."""
    stated = set(tokens(name))
    given = set(tokens(person.given_names)) | set(tokens(person.middle_name))
    surname = set(tokens(person.surname)) | set(tokens(person.middle_name))
    if birth is None:
        return bool(given & stated and surname & stated)
    return birth == person.birth_date and bool((given | surname) & stated)


def apply(card: Card, facts: FeedFacts) -> Card:
    """A copy of ``card`` with the feed's facts on it (the cached card is never changed)."""
    day, other_day = facts.day, facts.day_others
    protection = strictest(
        card.protection,
        *(p.protection for p in (*facts.anchored, *facts.others)),
        day.protection if day else None,
        other_day.protection if other_day else None,
    )
    if not facts.anchored:
        if protection == card.protection:
            return card
        return dataclasses.replace(card, protection=protection and protection.value)
    night = facts.snapshot_night if facts.snapshot_night is not None else card.night
    idents, earlier = list(card.idents), list(card.earlier_idents)
    names, sources = list(card.names), list(card.sources)
    fields = {k: list(v) for k, v in card.fields.items()}
    for person in facts.anchored:
        source = Source(FEED, person.key, person.location, night)
        sources.append(source)
        for ident in person.idents:  # every number with the feed as its source: verified
            (idents if ident.in_use else earlier).append(Sourced(ident.number, source))
        names.append(Sourced(_name(person), source))
        if person.birth_date:
            fields.setdefault("birth_date", []).append(Sourced(person.birth_date, source))
        if person.death_date:
            fields.setdefault("death_date", []).append(Sourced(person.death_date, source))
    if day and day.death_date:
        source = Source(FEED, facts.anchored[0].key, f"hendelse:{day.events[-1]}", card.night)
        fields.setdefault("death_date", []).append(Sourced(day.death_date, source))
        sources.append(source)
    if day:  # numbers the day's events give the person (a new fødselsnummer)
        known = {str(s.value) for s in (*idents, *earlier)}
        for number in sorted(day.numbers - known):
            earlier.append(Sourced(number, Source(FEED, facts.anchored[0].key, "hendelse", night)))
    return dataclasses.replace(
        card,
        protection=protection and protection.value,
        idents=idents,
        earlier_idents=earlier,
        names=names,
        fields=fields,
        sources=sources,
    )


def _name(person: FeedPerson) -> str:
    return " ".join(x for x in (person.given_names, person.middle_name, person.surname) if x)
