"""The feed as evidence for reconciliation: the numbers of one registered person are one person.

A D-nummer marked ``OPPHOERT`` and the fødselsnummer that replaced it, when one register still
holds the old number and another already the new one, would otherwise make two cards (Arena
records the change in its history; Infotrygd and the municipalities may lag). The feed's
numbers are given to the state registers' records as history, exactly as Arena's
``PERSON_IDENT_HIST`` is: the engine then treats them as numbers that record holds. A municipal
record's typed number gains nothing here: it is still believed only when the names agree, as
before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from personkort.card import STATE_REGISTERS
from personkort.reconcile.profile import record_key
from personkort.records import IdentHistory, PersonRecord


class Group(NamedTuple):
    """All the numbers one registered person has had, and where the feed says so."""

    numbers: frozenset[str]
    location: str


def history(persons: Sequence[PersonRecord], groups: Mapping[str, Group]) -> list[IdentHistory]:
    """History entries for each state record whose number the feed knows with others."""
    out = []
    for p in persons:
        if p.register not in STATE_REGISTERS or p.ident is None:
            continue
        group = groups.get(p.ident)
        if group is None:
            continue
        for number in sorted(group.numbers - {p.ident}):
            out.append(IdentHistory(p.register, p.source_key, group.location, number, None, None))
    return out


def touched(persons: Iterable[PersonRecord], numbers: set[str]) -> set[str]:
    """The record keys whose number is among ``numbers``: the records a change in the feed's
    groups can move (an incremental night must reconcile them again)."""
    return {record_key(p.register, p.source_key) for p in persons if p.ident in numbers}
