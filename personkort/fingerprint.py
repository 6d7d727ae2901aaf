"""What each source record says, grouped and fingerprinted, to tell tonight's changes.

A source record is its person record with everything the same register said about it (number
history, benefits, measures, services). Its fingerprint covers what it says, not where it stood
in the file, so a record that only moved lines is unchanged. Readers fingerprint each source as
they read it (``Extract.fingerprints``), in parallel where the night reads in parallel; the night
compares the fingerprints with the served night's to know what changed. An adapter that keeps
its source lines may fingerprint the lines instead (``raw_fingerprint``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personkort.reconcile.profile import record_key
from personkort.records import (
    Extract,
    IdentHistory,
    Measure,
    MunicipalService,
    PersonRecord,
    StateBenefit,
    field_values,
)


@dataclass(slots=True)
class RecordGroup:
    """A source record and everything its register said about it tonight. A part it has
    none of is the shared empty tuple: most records have no history, measures or services,
    and an empty list for each of those, on every record, held memory for nothing."""

    person: PersonRecord
    history: Sequence[IdentHistory] = ()
    benefits: Sequence[StateBenefit] = ()
    measures: Sequence[Measure] = ()
    services: Sequence[MunicipalService] = ()


def group_records(extract: Extract, only: set[str] | None = None) -> dict[str, RecordGroup]:
    """Each person record with everything its register said about it (``only``: just these
    records); ValueError for an item whose person record is not in the extract."""
    persons = {record_key(p.register, p.source_key): p for p in extract.persons}
    wanted = persons.keys() if only is None else only & persons.keys()
    groups = {key: RecordGroup(persons[key]) for key in wanted}

    def owner(register: object, source_key: str, what: str) -> RecordGroup | None:
        key = record_key(register, source_key)  # type: ignore[arg-type]
        if key not in persons:
            raise ValueError(f"{what} belongs to {key}, which has no person record in the night")
        return groups.get(key)

    for items, what, part in (
        (extract.ident_history, "identity history", "history"),
        (extract.state_benefits, "a benefit", "benefits"),
        (extract.measures, "a measure", "measures"),
        (extract.municipal_services, "a municipal service", "services"),
    ):
        for item in items:
            group = owner(item.register, item.source_key, what)
            if group is None:
                continue
            if held := getattr(group, part):
                held.append(item)  # type: ignore[attr-defined]  # a list once it holds one
            else:
                setattr(group, part, [item])
    return groups


_UNHASHED = frozenset({"location", "registered_at", "changed_at"})


def _content(record: object) -> tuple[object, ...]:
    return field_values(type(record), _UNHASHED)(record)


def content_fingerprint(group: RecordGroup) -> str:
    """A fingerprint of what a record says, not where it stood in the file tonight."""
    parts = (
        _content(group.person),
        _sorted_reprs(group.history),
        _sorted_reprs(group.benefits),
        _sorted_reprs(group.measures),
        _sorted_reprs(group.services),
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _sorted_reprs(records: Sequence[Any]) -> list[str]:
    return sorted(map(repr, map(_content, records))) if records else []


def raw_fingerprint(lines: list[bytes]) -> str:
    """A record's fingerprint from the source lines it was read from, where an adapter keeps
    them: equal lines say the same. Its own hash domain, so it never equals a fingerprint of
    parsed records (a record fingerprinted one way one night and the other way the next is
    counted as changed: more work, never a missed change)."""
    joined = b"\n".join(sorted(lines))
    return hashlib.blake2b(joined, digest_size=16, person=b"personkort-raw").hexdigest()


def fingerprints(extract: Extract) -> dict[str, str]:
    """Every record's fingerprint, or none when the extract does not hold whole records (an
    item whose person record is elsewhere: the night then groups and fingerprints itself)."""
    try:
        return {key: content_fingerprint(g) for key, g in group_records(extract).items()}
    except ValueError:
        return {}
