"""The Folkeregister feed in the store: each night's snapshot, versioned like the cards, and
the day's events, kept once each by ``hendelseId``.

The snapshot's rows are written beside the served night and seen when it is published; a night
without a snapshot writes none, so the last snapshot read stays in force. Only persons whose
line changed are written again (a digest per line), so a night costs what changed.

Events are stored as they arrive, and each accepted batch moves ``feed_state.generation``: an
API process that cached a card's feed facts reads them again when the counter has moved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, filterfalse
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from personkort.card import Card
from personkort.feed import evidence, overlay
from personkort.feed.day import fold, in_force
from personkort.feed.kinship import Kinship, Relation
from personkort.feed.records import (
    Change,
    EventKind,
    FeedEvent,
    FeedIdent,
    FeedPerson,
    FeedRelation,
    FeedSnapshot,
    Gradering,
    Role,
)
from personkort.freshness import NightFacts
from personkort.records import Quarantined
from personkort.store import models as m
from personkort.store.crypto import KeyRing, context
from personkort.store.nights import (
    _chunks,
    _close,
    driver_insert,
    driver_rows,
    published_night,
    visible,
)
from personkort.store.queries import card_id_for_ident

FEED_TABLES = (m.FeedPersonRow, m.FeedIdentRow, m.FeedRelationRow)
CHUNK = 500


@dataclass(frozen=True, slots=True)
class FeedWrite:
    persons: int
    new: int
    changed: int
    removed: int


# -- the night's snapshot ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredDigests:
    """The served night's snapshot persons by line digest, each with its person's key, read
    once a night (a million rows): the reader need not parse those lines, and the night
    compares tonight's snapshot with them without reading them again."""

    night: int | None  # the served night they were read at
    # line digest -> person key (the reader's ``known``), read-only: a night that compares a
    # snapshot with the very map it was read against trusts that the map did not change
    keys: Mapping[str, str]
    released: bool = False  # let go after a night's write: no longer the store's persons

    def __post_init__(self) -> None:
        if not isinstance(self.keys, MappingProxyType):
            object.__setattr__(self, "keys", MappingProxyType(self.keys))

    def release(self) -> None:
        """Let the map go once the night has written the snapshot: a million entries, which
        the caller holds all night otherwise (the reader and the night are done with it).
        Replaced, not emptied, and marked: a later night handed it reads the rows again
        (``digests_in_force``), and a snapshot read against the old map is checked line by
        line (``snapshot_changes``)."""
        object.__setattr__(self, "keys", MappingProxyType({}))  # frozen: changed on purpose
        object.__setattr__(self, "released", True)


DIGEST_CHARS = 32  # a line digest's hex characters (line_digest: 16 bytes)


def known_digests(engine: sa.Engine) -> StoredDigests:
    """The line digests of the served night's snapshot persons, for the reader: lines it
    need not parse (rows a half-written night left are not among them). From the two values
    the night that wrote the snapshot in force stored, else from its rows."""
    with engine.connect() as conn:
        served = published_night(conn)
        if served is None:
            return StoredDigests(None, {})
        t = m.FeedSnapshotRow
        stored = conn.execute(
            sa.select(t.line_digests, t.line_keys, t.line_check)
            .where(t.night_id <= served)
            .order_by(t.night_id.desc())
            .limit(1)
        ).first()
        if (
            served % ROWS_EVERY
            and stored is not None
            and stored.line_digests is not None
            and stored.line_keys is not None
            # the same open rows as when it was written, and its values as written: a row
            # deleted, added or swapped behind the map's back (or a half-written night's), or
            # a damaged value, makes the rows be read, so no line is skipped on its word
            and stored.line_check == _line_check(conn, stored.line_digests, stored.line_keys)
        ):
            unpacked = _unpacked(stored.line_digests, stored.line_keys)
            # as many entries as open rows (the check's count): a map written short would
            # leave its missing persons' lines parsed and written again beside their rows
            rows = stored.line_check.split(":", 1)[0]
            if unpacked is not None and rows == str(len(unpacked)):
                return StoredDigests(served, unpacked)
        return StoredDigests(served, digests_from_rows(conn, served))


# Every this many nights the rows are read even so: a row edited in place (its digest with
# it) keeps the map's count and ids, and is then parsed again within a week.
ROWS_EVERY = 7


def _line_check(conn: sa.Connection, digests: str, keys: str) -> str:
    """The open snapshot rows' count and id sum (an index's, not the rows'), and a digest of
    the map's two values."""
    t = m.FeedPersonRow
    count, ids = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.id), 0)).where(
            t.valid_to.is_(None)
        )
    ).one()
    values = hashlib.blake2b(digests.encode(), digest_size=16)
    values.update(b"\n" + keys.encode())
    return f"{count}:{ids}:{values.hexdigest()}"


def digests_from_rows(conn: sa.Connection, night: int) -> dict[str, str]:
    """The snapshot persons night ``night`` saw, by line digest, read from their rows."""
    t = m.FeedPersonRow
    return dict(driver_rows(conn, sa.select(t.digest, t.person_key).where(visible(t, night))))


# At most this many lines' map is stored (about 400 MB of digests): SQLite refuses a value
# over 1 GB by default and PostgreSQL a field over 1 GB. A larger snapshot stores none, and
# its next night reads the rows.
MAX_STORED_LINES = 12_000_000


def _packed(in_force: Iterable[tuple[str, str]]) -> tuple[str | None, str | None]:
    digests: list[str] = []
    keys: list[str] = []
    for digest, key in in_force:  # two lists of references, not a million pairs
        digests.append(digest)
        keys.append(key)
    if len(digests) > MAX_STORED_LINES:
        return None, None
    return "\n".join(digests), "\n".join(keys)


def _unpacked(digests: str, keys: str) -> dict[str, str] | None:
    """The stored map, or None if its two values do not pair up (then the rows are read).
    Both are split, not cut in a loop: a million slices took seconds of the night."""
    cut = digests.split("\n") if digests else []
    split = keys.split("\n") if keys else []
    if len(cut) != len(split) or len(digests) != max((DIGEST_CHARS + 1) * len(cut) - 1, 0):
        return None  # also a map stored run together, before the digests were split too
    return dict(zip(cut, split, strict=True))


def digests_in_force(conn: sa.Connection, stored: StoredDigests | None) -> Mapping[str, str]:
    """The store's persons by line digest for a night that holds the lease: ``stored`` if it
    was read at the night still served (the rows it saw are unchanged: a later night's rows
    are not visible at it, and a dead one's were rolled back) and not let go since, else
    read again."""
    served = published_night(conn)
    if stored is not None and not stored.released and stored.night == served:
        return stored.keys
    return digests_from_rows(conn, served or 0)  # none is visible at night 0


class StaleRead(RuntimeError):
    """The snapshot was read against persons the store no longer holds as they were."""


@dataclass(frozen=True, slots=True)
class SnapshotChanges:
    """What tonight's snapshot changes against the store's persons, worked out once a night:
    the keys of persons whose line is gone, and the persons whose line is new, each with its
    key (a row is written for each of its numbers and relations)."""

    gone: frozenset[str]
    fresh: list[tuple[FeedPerson, str]]
    current: Mapping[str, str]  # the store's persons compared with (digest -> key)


def snapshot_changes(snapshot: FeedSnapshot, current: Mapping[str, str]) -> SnapshotChanges:
    """Tonight's snapshot against the store's persons (``current``: digest → key). StaleRead
    if a line was left unparsed for a person the store does not hold: writing would lose
    that person."""
    if snapshot.released:  # its persons are gone: every stored person would count as gone
        raise StaleRead("this snapshot was written and let go already; read the drop again")
    tonight = set(snapshot.unchanged)
    # a snapshot read against this very map skipped only lines it holds: a million lookups
    # (seconds) spared; against another one (another night published since), each is checked
    if snapshot.read_against is not current and not current.keys() >= tonight:
        raise StaleRead("lines were skipped as unchanged that the store does not hold")
    tonight.update(snapshot.digests.values())  # and the parsed ones: every line of tonight's
    gone = frozenset(current[d] for d in filterfalse(tonight.__contains__, current))
    digests = snapshot.digests
    keyed = ((p, p.key) for p in snapshot.persons)
    fresh = [(p, key) for p, key in keyed if digests.get(key) not in current]
    return SnapshotChanges(gone, fresh, current)


def groups_tonight(
    conn: sa.Connection, changes: SnapshotChanges | None
) -> tuple[dict[str, evidence.Group], set[str]]:
    """The feed's multi-number persons as tonight will have them (the served snapshot's, with
    tonight's accepted snapshot's ``changes`` laid over it), by each of their numbers, and the
    numbers whose group changed tonight (their records must be reconciled again)."""
    served = published_night(conn)
    stored: dict[str, set[str]] = {}
    locations: dict[str, str] = {}
    if served is not None:
        t = m.FeedPersonRow
        for key, idents, location in conn.execute(
            sa.select(t.person_key, t.idents, t.location).where(t.numbers > 1, visible(t, served))
        ):
            stored[key] = {number for number, _, _ in idents}
            locations[key] = location
    regrouped: set[str] = set()
    if changes is not None:
        for key in changes.gone | {key for _, key in changes.fresh}:
            regrouped |= stored.pop(key, set())
            locations.pop(key, None)
        for person, key in changes.fresh:
            if len(person.idents) > 1:
                stored[key] = set(person.numbers)
                locations[key] = person.location
                regrouped |= person.numbers
    groups = {
        number: evidence.Group(frozenset(numbers), locations.get(key, "folkeregister"))
        for key, numbers in stored.items()
        for number in numbers
    }
    return groups, regrouped


def write_snapshot(
    conn: sa.Connection, night: int, snapshot: FeedSnapshot, changes: SnapshotChanges
) -> FeedWrite:
    """Write tonight's snapshot beside the served one: a person whose line is gone is closed,
    one whose line is new is written; an unchanged line (parsed or not) writes nothing."""
    gone, written = changes.gone, changes.fresh  # in file order: key order was no faster
    digests = snapshot.digests
    changed = sum(1 for _, key in written if key in gone)
    stale = sorted(gone)
    _close(conn, m.FeedPersonRow, m.FeedPersonRow.person_key, stale, night)
    _close(conn, m.FeedIdentRow, m.FeedIdentRow.person_key, stale, night)
    _close(conn, m.FeedRelationRow, m.FeedRelationRow.holder, stale, night)
    for table, columns, rows in snapshot_rows(written, digests, night):
        driver_insert(conn, table, columns, rows)
    kept = ((d, key) for d, key in changes.current.items() if key not in gone)
    line_digests, line_keys = _packed(chain(kept, ((digests[key], key) for _, key in written)))
    check = None
    if line_digests is not None and line_keys is not None:
        check = _line_check(conn, line_digests, line_keys)  # tonight's rows are all written
    t = m.FeedSnapshotRow
    # the snapshot in force keeps its map until this night is published (a failed night's row
    # is rolled back); older ones are not read again
    in_force = sa.select(sa.func.max(t.night_id)).where(t.night_id < night).scalar_subquery()
    conn.execute(
        sa.update(t)
        .where(t.night_id < in_force, t.line_digests.is_not(None))
        .values(line_digests=None, line_keys=None, line_check=None)
    )
    conn.execute(
        sa.insert(t).values(
            night_id=night,
            file=snapshot.file,
            as_of=snapshot.as_of,
            persons=snapshot.lines,
            line_digests=line_digests,
            line_keys=line_keys,
            line_check=check,
        )
    )
    return FeedWrite(snapshot.lines, len(written) - changed, changed, len(gone) - changed)


PERSON_COLUMNS = (
    "person_key",
    "digest",
    "location",
    "given_names",
    "middle_name",
    "surname",
    "birth_date",
    "gradering",
    "death_date",
    "changed_at",
    "idents",
    "numbers",
    "relations",
    "valid_from",
)


IDENT_COLUMNS = ("number", "person_key", "valid_from")
RELATION_COLUMNS = ("holder", "related", "role", "valid_from")


def snapshot_rows(
    written: Sequence[tuple[FeedPerson, str]], digests: Mapping[str, str], night: int
) -> list[tuple[type[m.Base], tuple[str, ...], Iterator[tuple[Any, ...]]]]:
    """The three feed tables' rows for ``written`` (persons with their keys), each table with
    its columns. Made as they are written (generators): a full snapshot's, whole, were
    millions; through the driver (``driver_insert``): SQLAlchemy's handling of each row took
    longer than SQLite."""
    return [
        (
            m.FeedPersonRow,
            PERSON_COLUMNS,
            (_person_row(p, key, digests.get(key, ""), night) for p, key in written),
        ),
        (
            m.FeedIdentRow,
            IDENT_COLUMNS,
            ((i.number, key, night) for p, key in written for i in p.idents),
        ),
        (
            m.FeedRelationRow,
            RELATION_COLUMNS,
            ((key, r.related, r.role.value, night) for p, key in written for r in p.relations),
        ),
    ]


def _person_row(p: FeedPerson, key: str, digest: str, night: int) -> tuple[Any, ...]:
    """A snapshot person's row, in ``PERSON_COLUMNS``' order."""
    return (
        key,
        digest,
        p.location,
        p.given_names,
        p.middle_name,
        p.surname,
        p.birth_date,
        p.gradering.value,
        p.death_date,
        p.changed_at,
        [[i.number, i.type, i.in_use] for i in p.idents],
        len(p.idents),
        [[r.related, r.role.value] for r in p.relations],
        night,
    )


def _person(row: sa.Row) -> FeedPerson:
    return FeedPerson(
        location=row.location,
        idents=tuple(FeedIdent(n, t, bool(u)) for n, t, u in row.idents),
        given_names=row.given_names,
        middle_name=row.middle_name,
        surname=row.surname,
        birth_date=row.birth_date,
        gradering=Gradering(row.gradering),
        death_date=row.death_date,
        relations=tuple(FeedRelation(r, Role(role)) for r, role in row.relations),
        changed_at=row.changed_at,
    )


def last_snapshot_persons(conn: sa.Connection) -> int | None:
    """How many persons the newest snapshot a published night read held (the feed's gate
    compares tonight's with it; a refused night's snapshot was rolled back)."""
    served = published_night(conn)
    if served is None:
        return None
    return conn.scalar(
        sa.select(m.FeedSnapshotRow.persons)
        .where(m.FeedSnapshotRow.night_id <= served)
        .order_by(m.FeedSnapshotRow.night_id.desc())
        .limit(1)
    )


# A lookup's reads, built once: a statement object keeps its compiled form (built anew at each
# call, SQLAlchemy's expression building was most of a first-sight lookup's feed cost).
_NIGHT = sa.bindparam("night", type_=sa.Integer)
_VALUES = sa.bindparam("values", expanding=True)
_SNAPSHOT_IN_FORCE = (
    sa.select(m.FeedSnapshotRow.night_id, m.FeedSnapshotRow.as_of, m.FeedSnapshotRow.file)
    .where(m.FeedSnapshotRow.night_id <= _NIGHT)
    .order_by(m.FeedSnapshotRow.night_id.desc())
    .limit(1)
)
_KEYS_OF_NUMBERS = sa.select(m.FeedIdentRow.number, m.FeedIdentRow.person_key).where(
    m.FeedIdentRow.number.in_(_VALUES), visible(m.FeedIdentRow, _NIGHT)
)
_NUMBERS_OF_KEYS = sa.select(m.FeedIdentRow.number, m.FeedIdentRow.person_key).where(
    m.FeedIdentRow.person_key.in_(_VALUES), visible(m.FeedIdentRow, _NIGHT)
)
_PERSONS = (
    sa.select(m.FeedPersonRow)
    .where(m.FeedPersonRow.person_key.in_(_VALUES), visible(m.FeedPersonRow, _NIGHT))
    .order_by(m.FeedPersonRow.person_key)
)
_RELATIONS = {
    column.key: sa.select(
        m.FeedRelationRow.holder, m.FeedRelationRow.related, m.FeedRelationRow.role
    ).where(column.in_(_VALUES), visible(m.FeedRelationRow, _NIGHT))
    for column in (m.FeedRelationRow.holder, m.FeedRelationRow.related)
}
_EVENTS_NAMING = sa.select(m.FeedEventIdent.event_id).where(m.FeedEventIdent.number.in_(_VALUES))
_EVENTS = sa.select(m.FeedEventRow).where(m.FeedEventRow.event_id.in_(_VALUES))


def snapshot_in_force(conn: sa.Connection, night: int) -> tuple[int, dt.datetime, str] | None:
    """(night, as_of, file) of the newest snapshot a night up to ``night`` read."""
    row = conn.execute(_SNAPSHOT_IN_FORCE, {"night": night}).first()
    if row is None:
        return None
    return row.night_id, _aware(row.as_of), row.file


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)  # SQLite drops the offset


# -- reading a card's feed facts -------------------------------------------------------------


def canonical(conn: sa.Connection, night: int, numbers: Iterable[str]) -> dict[str, str]:
    """Each number the snapshot holds → its person's key."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(numbers)), CHUNK):
        found.update(conn.execute(_KEYS_OF_NUMBERS, {"values": chunk, "night": night}).all())
    return found


def persons(conn: sa.Connection, night: int, keys: Iterable[str]) -> list[FeedPerson]:
    out: list[FeedPerson] = []
    for chunk in _chunks(sorted(set(keys)), CHUNK):
        rows = conn.execute(_PERSONS, {"values": chunk, "night": night}).all()
        out.extend(_person(r) for r in rows)
    return out


def numbers_of(conn: sa.Connection, night: int, keys: Iterable[str]) -> dict[str, set[str]]:
    """Every number of each person key."""
    out: dict[str, set[str]] = {}
    for chunk in _chunks(sorted(set(keys)), CHUNK):
        for number, key in conn.execute(_NUMBERS_OF_KEYS, {"values": chunk, "night": night}):
            out.setdefault(key, set()).add(number)
    return out


def relations_touching(
    conn: sa.Connection, night: int, keys: Iterable[str], numbers: Iterable[str]
) -> list[Relation]:
    """The relations held by these persons, or naming any of these numbers."""
    out: set[Relation] = set()
    for column, values in (("holder", keys), ("related", numbers)):
        for chunk in _chunks(sorted(set(values)), CHUNK):
            for holder, related, role in conn.execute(
                _RELATIONS[column], {"values": chunk, "night": night}
            ):
                out.add(Relation(holder, related, Role(role)))
    return sorted(out, key=lambda r: (r.holder, r.related, r.role))


def facts_for(conn: sa.Connection, card: Card) -> overlay.FeedFacts:
    """The feed's facts about a served card's people: the snapshot in force at the card's night
    and the day's events since it was taken (relatives are the caseworker's side: ``kin_of``)."""
    night = card.night
    snapshot = snapshot_in_force(conn, night)
    snapshot_night, as_of = (snapshot[0], snapshot[1]) if snapshot else (None, None)
    numbers = card.all_idents
    keys_of = canonical(conn, night, numbers)
    found = persons(conn, night, set(keys_of.values()))
    mine, others = overlay.anchored(card, found)
    anchored = {n for p in mine for n in p.numbers}
    events = events_naming(conn, numbers | anchored)
    # Cancellations and corrections are read across everything found (one may name another
    # person's event: it takes that event out of force there, and raises no one here).
    active = in_force(events)
    canon = canonical(conn, night, {n for e in active for n in e.idents})
    mine_keys = {p.key for p in mine}

    def keys(e: FeedEvent) -> set[str]:
        return {canon[n] for n in e.idents if n in canon}

    # The person's numbers: the snapshot's, and those the day's identifier events add to them.
    person = set(anchored)
    grown = True
    while grown:
        grown = False
        for e in active:
            named = set(e.idents) | ({e.ident.number} if e.ident else set())
            if (
                e.kind is EventKind.FOLKEREGISTERIDENTIFIKATOR
                and person & named
                and keys(e) <= mine_keys
                and not named <= person
            ):
                person |= named
                grown = True

    def held(e: FeedEvent) -> bool:
        """The event is about the anchored person, and only them: an event naming the numbers
        of two registered people (a sender's error, or worse) says nothing of identity."""
        return bool(person & set(e.idents)) and keys(e) <= mine_keys

    day_mine = [e for e in active if held(e)]
    day_rest = [e for e in active if not held(e) and (numbers | person) & set(e.idents)]
    return overlay.FeedFacts(
        snapshot_night,
        as_of,
        tuple(mine),
        tuple(others),
        fold(day_mine, as_of) if day_mine else None,
        fold(day_rest, as_of) if day_rest else None,
    )


def kin_of(conn: sa.Connection, night: int, number: str) -> dict[str, str]:
    """The relatives of whoever holds ``number`` (a caseworker's ``pid``), each by every number
    they have, with what they are to that person: the relatives gate's evidence.

    Worked out from the caseworker's side, once per caseworker and feed state, not per card:
    every relation the gate knows is mutual (a parent's child, a sibling's sibling), so "this
    card's person is my child" is "I am their parent", and a first lookup of a card costs no
    walk through the family. A number the snapshot does not hold still has the relatives whose
    records name it (a child's record names its father)."""
    snapshot = snapshot_in_force(conn, night)
    as_of = snapshot[1] if snapshot else None
    keys = set(canonical(conn, night, {number}).values())
    people = _numbers_with_keys(conn, night, keys) or {number: {number}}
    mine = {n for ns in people.values() for n in ns} | {number}
    active = in_force(events_naming(conn, mine))
    named_in = {
        e.event_id: set(e.idents) | ({e.ident.number} if e.ident else set()) for e in active
    }
    canon = canonical(conn, night, {n for ns in named_in.values() for n in ns})
    # The person's numbers the day's identifier events add (a new fødselsnummer). An event
    # naming another registered person says nothing of identity (as in facts_for), except
    # that a number the snapshot does not hold may be given to one registered person.
    grown = True
    while grown:
        grown = False
        for e in active:
            named = named_in[e.event_id]
            if (
                e.kind is not EventKind.FOLKEREGISTERIDENTIFIKATOR
                or not mine & named
                or named <= mine
            ):
                continue
            registered = {canon[n] for n in named if n in canon}
            if not registered <= people.keys():
                if keys or len(registered) > 1:
                    continue
                keys = registered  # the number is that person's new one: they are the person
                people = _numbers_with_keys(conn, night, keys)
                mine |= {n for ns in people.values() for n in ns}
            mine |= named
            grown = True
    return _kin(conn, night, people, mine, active, as_of)


def _kin(
    conn: sa.Connection,
    night: int,
    people: dict[str, set[str]],
    day_numbers: Iterable[str],
    day_events: Sequence[FeedEvent],
    as_of: dt.datetime | None,
) -> dict[str, str]:
    """The relatives of ``people`` (key → the numbers the snapshot holds for them), each by
    every number they have (the snapshot's and the day's). The day's relation events (among
    ``day_events``, those in force) count whichever end holds them."""
    me = set(people)
    first_key = sorted(me)[0]
    held = {n for ns in people.values() for n in ns}
    mine = held | set(day_numbers)
    extra = _day_relations(day_events, as_of)
    first = relations_touching(conn, night, me, mine)
    near = {r.holder for r in (*first, *extra)} | {r.related for r in (*first, *extra)}
    canon = canonical(conn, night, near)
    near_keys = {canon.get(n, n) for n in near} - me
    near_numbers = near | set().union(*numbers_of(conn, night, near_keys).values())
    second = relations_touching(conn, night, near_keys, near_numbers - mine)
    # The second step's relations from the day's events too: a child registered today to the
    # caseworker's parent is the caseworker's sibling now, not after the night.
    second += _day_relations(in_force(events_naming(conn, near_numbers - mine)), as_of)
    rows = [*first, *second, *extra]
    canon.update(canonical(conn, night, {n for r in second for n in (r.holder, r.related)}))
    canon.update({n: key for key, ns in people.items() for n in ns})
    canon.update({n: first_key for n in set(day_numbers) - held})
    kinship = Kinship(rows, canon)
    relatives: dict[str, str] = {}
    for key in sorted(me):
        for relative, relation in kinship.relatives(key).items():
            if relative not in me:
                relatives.setdefault(relative, relation)
    numbers = _numbers_with_keys(conn, night, relatives)
    # A relative's numbers the day's events added (a new fødselsnummer) are theirs too.
    for event in events_naming(conn, {n for ns in numbers.values() for n in ns}):
        if event.kind is EventKind.FOLKEREGISTERIDENTIFIKATOR:
            for held_numbers in numbers.values():
                if held_numbers & set(event.idents):
                    held_numbers.update(event.idents)
                    if event.ident is not None:
                        held_numbers.add(event.ident.number)
    return {
        number: relation
        for key, relation in relatives.items()
        for number in numbers.get(key, {key})
    }


def _day_relations(events: Sequence[FeedEvent], as_of: dt.datetime | None) -> list[Relation]:
    """The relations the day's events add: those after the snapshot in force, and none that
    ends one (lowering waits for the night)."""
    return [
        Relation(e.idents[0], e.relation.related, e.relation.role)
        for e in events
        if e.relation is not None
        and e.change is not Change.OPPHOERT
        and (as_of is None or e.created > as_of)
    ]


def _numbers_with_keys(conn: sa.Connection, night: int, keys: Iterable[str]) -> dict[str, set[str]]:
    """``numbers_of`` with each key among its own person's numbers (a key is the number in
    use)."""
    keys = set(keys)
    numbers = numbers_of(conn, night, keys)
    for key in keys:
        numbers.setdefault(key, set()).add(key)
    return numbers


def card_via_feed(conn: sa.Connection, night: int, ident: str) -> str | None:
    """The card of the person the feed says holds ``ident`` (the snapshot, or an event since),
    through any of their other numbers a card holds: a number only the feed knows (a new one,
    an old D-nummer) finds the card. Not cached: the day's events can add a number any time."""
    others: set[str] = set()
    key = canonical(conn, night, [ident]).get(ident)
    if key is not None:
        others |= set().union(*numbers_of(conn, night, [key]).values())
    for event in events_naming(conn, [ident]):
        others |= set(event.idents)
    for number in sorted(others - {ident}):
        if (card_id := card_id_for_ident(conn, night, number)) is not None:
            return card_id
    return None


def generation(conn: sa.Connection) -> int:
    return conn.scalar(sa.select(m.FeedState.generation).where(m.FeedState.id == 1)) or 0


# -- the day's events ---------------------------------------------------------------------


def _payload(e: FeedEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.gradering is not None:
        out["gradering"] = e.gradering.value
    if e.ident is not None:
        out["ident"] = [e.ident.number, e.ident.type, e.ident.in_use]
    if e.death_date is not None:
        out["death_date"] = e.death_date.isoformat()
    if e.relation is not None:
        out["relation"] = [e.relation.related, e.relation.role.value]
    return out


def _event(row: sa.Row) -> FeedEvent:
    p = row.payload or {}
    ident = p.get("ident")
    relation = p.get("relation")
    return FeedEvent(
        event_id=row.event_id,
        created=_aware(row.created),
        idents=tuple(row.idents),
        kind=EventKind(row.kind),
        change=Change(row.change),
        replaces=row.replaces,
        location=row.location,
        gradering=Gradering(p["gradering"]) if "gradering" in p else None,
        ident=FeedIdent(ident[0], ident[1], bool(ident[2])) if ident else None,
        death_date=dt.date.fromisoformat(p["death_date"]) if "death_date" in p else None,
        relation=FeedRelation(relation[0], Role(relation[1])) if relation else None,
    )


def store_events(
    conn: sa.Connection, events: Sequence[FeedEvent], received_at: dt.datetime
) -> list[FeedEvent]:
    """Store the events not already stored (by ``hendelseId``) and move the generation; the
    ones stored now are returned. Two processes storing the same event: one row, no error."""
    unique: dict[str, FeedEvent] = {}
    for e in events:
        unique.setdefault(e.event_id, e)
    known: set[str] = set()
    for chunk in _chunks(sorted(unique), CHUNK):
        known.update(
            conn.scalars(
                sa.select(m.FeedEventRow.event_id).where(m.FeedEventRow.event_id.in_(chunk))
            )
        )
    fresh = [e for e in unique.values() if e.event_id not in known]
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        m.FeedEventRow
    )
    stored: list[FeedEvent] = []
    for e in fresh:
        result = conn.execute(
            insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(m.FeedEventRow.id),
            {
                "event_id": e.event_id,
                "created": e.created,
                "received_at": received_at,
                "kind": e.kind.value,
                "change": e.change.value,
                "replaces": e.replaces,
                "idents": list(e.idents),
                "payload": _payload(e),
                "location": e.location[:200],
            },
        )
        if result.first() is None:
            continue  # another process stored it first
        numbers = set(e.idents) | ({e.ident.number} if e.ident else set())
        if e.relation is not None:  # found from the related person's card too
            numbers.add(e.relation.related)
        conn.execute(
            sa.insert(m.FeedEventIdent),
            [{"event_id": e.event_id, "number": n} for n in sorted(numbers)],
        )
        stored.append(e)
    if stored:
        conn.execute(
            sa.update(m.FeedState)
            .where(m.FeedState.id == 1)
            .values(generation=m.FeedState.generation + 1)
        )
    return stored


def quarantine_events(
    conn: sa.Connection, items: Sequence[Quarantined], received_at: dt.datetime, keys: KeyRing
) -> None:
    """Events that could not be read: kept whole, each raw text sealed to its place."""
    if items:
        conn.execute(
            sa.insert(m.FeedEventQuarantine),
            [
                {
                    "received_at": received_at,
                    "location": q.location[:200],
                    "reason": q.reason,
                    "raw": keys.encrypt(
                        q.raw, context("feed_event_quarantine", "raw", q.location[:200])
                    ),
                }
                for q in items
            ],
        )


def mark_inbox(conn: sa.Connection, read_at: dt.datetime, error: str | None) -> None:
    """How the inbox was last read: the cards say so when it could not be (a change of that
    moves the generation, so every process's cards say it at once)."""
    before = conn.scalar(sa.select(m.FeedState.inbox_error).where(m.FeedState.id == 1))
    values: dict[str, Any] = {"inbox_read_at": read_at, "inbox_error": error}
    if before != error:
        values["generation"] = m.FeedState.generation + 1
    conn.execute(sa.update(m.FeedState).where(m.FeedState.id == 1).values(**values))


def night_facts(conn: sa.Connection, night: int) -> NightFacts:
    """What the freshness of a served card's sources needs: the nights' dates, the sources a
    steward let the served night publish without, the feed's state."""
    rows = conn.execute(sa.select(m.Night.id, m.Night.started_at).where(m.Night.id <= night))
    dates = {n: _aware(started).date() for n, started in rows}
    counts = conn.scalar(sa.select(m.Night.counts).where(m.Night.id == night)) or {}
    accepted = frozenset(
        str(a.get("source", "")).split(":", 1)[0] for a in counts.get("sources_accepted") or []
    )
    snapshot = snapshot_in_force(conn, night)
    error = conn.scalar(sa.select(m.FeedState.inbox_error).where(m.FeedState.id == 1))
    return NightFacts(
        night,
        dates,
        accepted,
        str((counts.get("feed") or {}).get("status", "missing")),
        snapshot[1] if snapshot else None,
        error,
    )


def events_naming(conn: sa.Connection, numbers: Iterable[str], steps: int = 4) -> list[FeedEvent]:
    """Every stored event that names any of these numbers, and the events naming the numbers
    those name, up to ``steps`` steps out (a number added today, then a raise under it), and
    the events that cancellations and corrections among them name."""
    wanted, seen_numbers = set(numbers), set()
    found: dict[str, FeedEvent] = {}  # each event read once, however many steps name it
    for _ in range(steps):
        fresh = sorted(wanted - seen_numbers)
        if not fresh:
            break
        seen_numbers |= wanted
        ids: set[str] = set()
        for chunk in _chunks(fresh, CHUNK):
            ids.update(conn.scalars(_EVENTS_NAMING, {"values": chunk}))
        new = _events(conn, ids - found.keys())
        found.update((e.event_id, e) for e in new)
        wanted = seen_numbers | {n for e in new for n in e.idents if e.relation is None}
        wanted |= {e.ident.number for e in new if e.ident is not None}
    events = list(found.values())
    named = {e.replaces for e in events if e.replaces} - found.keys()
    return events + _events(conn, named)


def _events(conn: sa.Connection, ids: Iterable[str]) -> list[FeedEvent]:
    rows = []
    for chunk in _chunks(sorted(set(ids)), CHUNK):
        rows.extend(conn.execute(_EVENTS, {"values": chunk}).all())
    return [_event(r) for r in rows]
