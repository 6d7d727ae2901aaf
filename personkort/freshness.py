"""What a card says about its sources: for each register the caseworker sees values from, the
date of the data shown and whether tonight's extract of it was read, missing, refused or stale
(NAV's card lists its failed systems). Decided from the view, so a register the caseworker may
not know about (another municipality's records) is not named either."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from personkort.feed.records import FEED

ORDER = ("arena", "infotrygd", "kommune", FEED)


@dataclass(frozen=True, slots=True)
class NightFacts:
    """The served night, as the freshness of a card's sources needs it."""

    night: int
    dates: Mapping[int, dt.date]  # each night's date (when it ran)
    accepted_missing: frozenset[str]  # registers a steward let the night publish without
    feed_status: str  # read | missing | refused (tonight's snapshot)
    feed_as_of: dt.datetime | None  # the snapshot in force
    inbox_error: str | None  # the events inbox could not be read when it was last tried


def _sources(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("source"), dict) and "register" in value["source"]:
            yield value["source"]
        for v in value.values():
            yield from _sources(v)
    elif isinstance(value, list):
        for v in value:
            yield from _sources(v)


def source_states(view: Mapping[str, Any], facts: NightFacts) -> list[dict[str, Any]]:
    newest: dict[str, int] = {}
    for source in _sources(dict(view)):
        register, night = source["register"], source.get("night")
        if isinstance(night, int):
            newest[register] = max(newest.get(register, night), night)
    out = []
    for register in sorted(newest, key=lambda r: ORDER.index(r) if r in ORDER else 99):
        note = None
        if register == FEED:
            as_of = facts.feed_as_of
            data_from = as_of.date() if as_of else facts.dates.get(newest[register])
            tonight = facts.feed_status
            if facts.inbox_error:
                tonight, note = "events_unreadable", "the day's events may be missing"
        elif register in facts.accepted_missing:
            # not delivered tonight: what the card shows is from the night that last wrote it
            data_from, tonight = facts.dates.get(newest[register]), "missing"
        else:  # read tonight: unchanged records are as current as changed ones
            data_from, tonight = facts.dates.get(facts.night), "read"
        out.append(
            {
                "register": register,
                "data_from": data_from.isoformat() if data_from else None,
                "tonight": tonight,
                "may_be_old": tonight != "read",
                "note": note,
            }
        )
    return out
