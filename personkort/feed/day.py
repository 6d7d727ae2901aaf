"""What the day's events change before the next snapshot, for one person.

Delivery is at least once and out of order, so the state is a function of the *set* of events
seen, never of their arrival order: duplicates (same ``hendelseId``) count once, an event that a
``KORRIGERT`` or ``ANNULLERT`` names is out of force whenever it arrived, and what is left is
read in ``(opprettet, hendelseId)`` order. Events the served snapshot already includes
(created at or before its ``as_of``) are not the day's: the snapshot speaks for them.

Raising is urgent, lowering is not (spec): a marker counts as the strictest gradering any
event in force gives, and an ``OPPHOERT`` (protection lifted) waits for the night's snapshot;
so does a relation's end. A cancelled or corrected raise is no raise: it was never true.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from personkort.feed.records import (
    Change,
    EventKind,
    FeedEvent,
    FeedRelation,
    protection_of,
    strictest,
)
from personkort.records import Protection


@dataclass(frozen=True, slots=True)
class DayState:
    """The day's events' effect on one person, on top of the snapshot."""

    numbers: frozenset[str]  # every number the events name for the person
    protection: Protection | None  # the strictest marker the day raised
    death_date: dt.date | None  # a death reported today (None: none, or it was cancelled)
    relations: frozenset[FeedRelation]  # relations added today, held by ``numbers``' person
    events: tuple[str, ...]  # the ids of the events in force, for the audit trail

    @property
    def empty(self) -> bool:
        return not (self.protection or self.death_date or self.relations)


def in_force(events: Iterable[FeedEvent], after: dt.datetime | None = None) -> list[FeedEvent]:
    """The events that still say something, in a fixed order: each id once, none that a
    correction or cancellation names, no cancellation itself, none the snapshot includes."""
    unique: dict[str, FeedEvent] = {}
    for e in events:
        unique.setdefault(e.event_id, e)
    replaced = {e.replaces for e in unique.values() if e.replaces}
    kept = [
        e
        for e in unique.values()
        if e.event_id not in replaced
        and e.change is not Change.ANNULLERT
        and (after is None or e.created > after)
    ]
    return sorted(kept, key=lambda e: (e.created, e.event_id))


def fold(events: Iterable[FeedEvent], after: dt.datetime | None = None) -> DayState:
    """One person's day: ``events`` are all the stored events naming any of their numbers."""
    events = list(events)
    numbers = {n for e in events for n in e.idents}
    numbers.update(e.ident.number for e in events if e.ident is not None)
    active = in_force(events, after)
    raised = strictest(
        *(
            protection_of(e.gradering)
            for e in active
            if e.kind is EventKind.ADRESSEBESKYTTELSE and e.change is not Change.OPPHOERT
        )
    )
    death: dt.date | None = None
    for e in active:  # the last word on a death wins, an OPPHOERT takes it back
        if e.kind is EventKind.DOEDSFALL:
            death = None if e.change is Change.OPPHOERT else e.death_date
    relations = frozenset(
        e.relation for e in active if e.relation is not None and e.change is not Change.OPPHOERT
    )
    return DayState(frozenset(numbers), raised, death, relations, tuple(e.event_id for e in active))
