"""Writing a night into the store beside the served one, and publishing it in one step.

A night's rows are written with ``valid_from = night``; rows it replaces get ``valid_to = night``.
Neither is visible to readers, who see the night named in ``publication``, until ``publish``
moves that pointer. Only records whose content changed are written again, so a second night
costs what changed, not the whole population. Before a night starts, whatever an earlier night
left half-written (it crashed or was killed) is rolled back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import cache
from itertools import islice
from typing import Any

import sqlalchemy as sa

from personkort.fingerprint import RecordGroup, content_fingerprint, group_records
from personkort.reconcile.card_ids import CardChange, assign_card_ids
from personkort.reconcile.engine import Reconciliation
from personkort.reconcile.incremental import CardState, Incremental
from personkort.records import Extract
from personkort.store import lease
from personkort.store import models as m
from personkort.store.crypto import LINE_PREFIX, KeyRing, context, key_ring, service_context
from personkort.store.quarantine import quarantine_insert_rows

VERSIONED = (
    m.SourceRecord,
    m.MatchKey,
    m.IdentHistoryRow,
    m.StateBenefitRow,
    m.MeasureRow,
    m.MunicipalServiceRow,
    m.CardLink,
    m.Card,
    m.FeedPersonRow,
    m.FeedIdentRow,
    m.FeedRelationRow,
)
PER_RECORD = (
    m.SourceRecord,
    m.IdentHistoryRow,
    m.StateBenefitRow,
    m.MeasureRow,
    m.MunicipalServiceRow,
)
CHUNK = 5_000
SQLITE_CHUNK = 1_000
BREATHE = 0.1  # seconds: the longest a SQLite night holds the write lock at a time
SQLITE_GAP = 0.003  # seconds the night leaves the lock free after each step, for a lookup
RECORDS_AT_A_TIME = 20_000  # records whose rows are built and written together


@dataclass(frozen=True, slots=True)
class NightWrite:
    """What a night changed in the store."""

    records_new: int
    records_changed: int
    records_removed: int
    cards: int
    cards_new: int
    links_changed: int
    changes: list[CardChange]
    card_ids: list[str]  # the card id of each reconciled cluster, in cluster order


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def visible(table: type[m.Base], night: int | sa.BindParameter[int]) -> sa.ColumnElement[bool]:
    """Rows of a versioned table as night ``night`` saw them."""
    return sa.and_(
        table.valid_from <= night,  # type: ignore[attr-defined]
        sa.or_(table.valid_to.is_(None), table.valid_to > night),  # type: ignore[attr-defined]
    )


_PUBLISHED = sa.select(m.Publication.night_id).where(m.Publication.id == 1)  # built once


def published_night(conn: sa.Connection) -> int | None:
    return conn.scalar(_PUBLISHED)


def begin_night(engine: sa.Engine, drop_dir: str, fingerprint: str) -> int:
    """Take the store's night lease (NightBusy if another night holds it), roll back any
    half-written night (with the lease taken, one is necessarily dead), then open a new one."""
    try:
        with engine.begin() as conn:
            lease.take(conn)
            rollback_unpublished(conn)
            night = conn.execute(
                sa.insert(m.Night).returning(m.Night.id),
                {
                    "drop_dir": drop_dir,
                    "fingerprint": fingerprint,
                    "status": "running",
                    "started_at": now(),
                },
            ).scalar_one()
            lease.bind(conn, night)
            return night
    except sa.exc.OperationalError as exc:
        if "locked" in str(exc.orig).lower():  # SQLite: another night is writing right now
            raise lease.NightBusy("another night is writing to the store; wait for it") from None
        raise


def rollback_unpublished(conn: sa.Connection) -> None:
    """Undo what nights after the published one wrote to the versioned tables."""
    served = published_night(conn) or 0
    for table in VERSIONED:
        conn.execute(sa.delete(table).where(table.valid_from > served))
        conn.execute(sa.update(table).where(table.valid_to > served).values(valid_to=None))
    conn.execute(sa.delete(m.FeedSnapshotRow).where(m.FeedSnapshotRow.night_id > served))
    stale = sa.select(m.Night.id).where(m.Night.id > served, m.Night.status == "running")
    stale_ids = list(conn.scalars(stale))
    if stale_ids:
        for table in (m.QuarantineRow, m.FindingRow, m.ReviewRow, m.CardEvent):
            conn.execute(sa.delete(table).where(table.night_id.in_(stale_ids)))
        conn.execute(
            sa.update(m.Night)
            .where(m.Night.id.in_(stale_ids))
            .values(status="failed", error="interrupted before it was published", finished_at=now())
        )


def finish_night(
    engine: sa.Engine,
    night: int,
    status: str,
    *,
    counts: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Close a night. ``published`` moves the publication pointer to it in the same transaction,
    if the night still holds the lease and is newer than the served one (else NightBusy, and
    nothing changes); any other status rolls the night's rows back. The lease is given up."""
    with engine.begin() as conn:
        if status == "published":
            lease.check_publish(conn, night, published_night(conn))
            if conn.scalar(sa.select(sa.func.count()).select_from(m.Publication)):
                conn.execute(sa.update(m.Publication).values(night_id=night, published_at=now()))
            else:
                conn.execute(
                    sa.insert(m.Publication).values(id=1, night_id=night, published_at=now())
                )
        else:
            rollback_unpublished_night(conn, night)
        conn.execute(
            sa.update(m.Night)
            .where(m.Night.id == night)
            .values(status=status, counts=counts, report=report, error=error, finished_at=now())
        )
        lease.release(conn, night)


def rollback_unpublished_night(conn: sa.Connection, night: int) -> None:
    """A night that will not be published must leave no version rows behind."""
    conn.execute(sa.delete(m.FeedSnapshotRow).where(m.FeedSnapshotRow.night_id == night))
    for table in VERSIONED:
        conn.execute(sa.delete(table).where(table.valid_from == night))
        conn.execute(sa.update(table).where(table.valid_to == night).values(valid_to=None))


# -- writing ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Delta:
    """Tonight's source records against the served night's: which are new, changed, gone."""

    groups: dict[str, RecordGroup]
    hashes: dict[str, str]
    changed: list[str]
    new: list[str]
    removed: list[str]


def compare_with_served(conn: sa.Connection, extract: Extract) -> Delta:
    """Tonight's fingerprints (the readers', or made here for records they did not
    fingerprint) against the served night's; only new and changed records are grouped for
    writing."""
    current = dict(
        driver_rows(
            conn,
            sa.select(m.SourceRecord.record_key, m.SourceRecord.content_hash).where(
                m.SourceRecord.valid_to.is_(None)
            ),
        )
    )
    hashes = extract.fingerprints
    groups = None
    if len(hashes) != len(extract.persons):  # the readers did not fingerprint every record
        known = hashes
        groups = group_records(extract)
        hashes = {key: known.get(key) or content_fingerprint(g) for key, g in groups.items()}
    changed = [k for k, h in hashes.items() if k in current and current[k] != h]
    new = [k for k in hashes if k not in current]
    if groups is None:
        groups = group_records(extract, only={*changed, *new})
    return Delta(groups, hashes, changed, new, removed=[k for k in current if k not in hashes])


def write_night(
    engine: sa.Engine,
    night: int,
    extract: Extract,
    result: Reconciliation,
    keys: KeyRing | None = None,
    *,
    delta: Delta | None = None,
    incremental: Incremental | None = None,
) -> NightWrite:
    """Write a reconciled night beside the served one (invisible until published). ``delta``:
    the comparison already made; ``incremental``: the result came from an incremental run, so
    only the recomputed records' match keys can have changed."""
    keys = keys or key_ring()
    with engine.connect() as conn:
        if delta is None:
            delta = compare_with_served(conn, extract)
        groups, hashes = delta.groups, delta.hashes
        changed, new, removed = delta.changed, delta.new, delta.removed
        for table in PER_RECORD:
            _close(conn, table, table.record_key, [*changed, *removed], night)
        # in chunks of records: a full night's rows, built whole, were the write's largest
        # allocation (every record's row and each of its benefits' and services')
        for part in _chunks([*changed, *new], RECORDS_AT_A_TIME):
            for table, table_rows in _rows(groups, part, hashes, night, keys).items():
                _insert(conn, table, table_rows)
        _write_match_keys(conn, night, result, incremental, removed)

        previous_links = incremental.links if incremental else current_links(conn)
        previous_cards = incremental.cards if incremental else current_cards(conn)
        clusters = result.clusters
        # An incremental night changes only the recomputed records' clusters; every other
        # cluster is one of last night's cards, whole, with its id and attributes.
        redone = incremental.recomputed if incremental else None
        if redone is None:
            touched = list(range(len(clusters)))
            before = previous_links
        else:
            touched = [n for n, records in enumerate(clusters) if records[0] in redone]
            before = {r: previous_links[r] for r in (*redone, *removed) if r in previous_links}
        ids, changes = assign_card_ids(
            [clusters[n] for n in touched], before, f"night-{_generation(conn)}"
        )
        # the recomputed clusters' ids are set from ``ids`` just below
        card_ids = ids if redone is None else [previous_links.get(c[0], "") for c in clusters]
        for n, card in zip(touched, ids, strict=True):
            card_ids[n] = card
        links = {r: card_ids[n] for n in touched for r in clusters[n]}
        moved = [r for r, card in links.items() if before.get(r) != card]
        gone = [r for r in before if r not in links]
        _close(conn, m.CardLink, m.CardLink.record_key, [*moved, *gone], night)
        _insert(
            conn,
            m.CardLink,
            ({"record_key": r, "card_id": links[r], "valid_from": night} for r in moved),
        )

        reviewed = _reviewed(result)  # once: per cluster it cost 40 s at a million persons
        cards = {
            card_ids[n]: (
                result.protection[n].value if n in result.protection else None,
                n in result.skjermet,
                not reviewed.isdisjoint(clusters[n]),
                len(clusters[n]),
            )
            for n in touched
        }
        earlier = (
            previous_cards
            if redone is None
            else {c: previous_cards[c] for c in set(before.values())}
        )
        stale = [c for c, attrs in earlier.items() if cards.get(c) != attrs]
        _close(conn, m.Card, m.Card.card_id, stale, night)
        _insert(
            conn,
            m.Card,
            (
                {
                    "card_id": c,
                    "protection": a[0],
                    "skjermet": a[1],
                    "pending_review": a[2],
                    "records": a[3],
                    "valid_from": night,
                }
                for c, a in cards.items()
                if earlier.get(c) != a
            ),
        )
        _insert_night_rows(conn, night, extract, result, changes, keys)
        conn.commit()
    return NightWrite(
        records_new=len(new),
        records_changed=len(changed),
        records_removed=len(removed),
        cards=len(clusters),
        cards_new=sum(1 for c in cards if c not in earlier),
        links_changed=len(moved) + len(gone),
        changes=changes,
        card_ids=card_ids,
    )


def _generation(conn: sa.Connection) -> int:
    """Which published night this will be (1 for the first): what new card ids are made from.
    Not the night's row id, which a refused or interrupted night before it used up, so a rerun
    after an interruption gives the ids an uninterrupted night would have given."""
    published = sa.select(sa.func.count()).where(m.Night.status == "published")
    return (conn.scalar(published) or 0) + 1


def current_links(conn: sa.Connection) -> dict[str, str]:
    """Record → card id, as the served night (or the night being written) has them."""
    current = m.CardLink.valid_to.is_(None)
    query = sa.select(m.CardLink.record_key, m.CardLink.card_id).where(current)
    return dict(conn.execute(query).all())


def current_cards(conn: sa.Connection) -> dict[str, CardState]:
    """Every current card by id."""
    rows = conn.execute(
        sa.select(
            m.Card.card_id,
            m.Card.protection,
            m.Card.skjermet,
            m.Card.pending_review,
            m.Card.records,
        ).where(m.Card.valid_to.is_(None))
    )
    return {card: CardState(*state) for card, *state in rows}


def _write_match_keys(
    conn: sa.Connection,
    night: int,
    result: Reconciliation,
    incremental: Incremental | None,
    removed: Sequence[str],
) -> None:
    """Keep each record's match keys and floating flag for the next incremental night."""
    if incremental is None:  # a full run: every record's keys anew
        _close_all(conn, m.MatchKey, night)
        stale: Iterable[str] = result.keys
    else:
        previous = incremental.previous
        stale = [
            r
            for r in sorted(incremental.recomputed)
            if previous.get(r) != (result.keys[r], r in result.floating)
        ]
        _close(conn, m.MatchKey, m.MatchKey.record_key, [*stale, *removed], night)
    _insert(
        conn,
        m.MatchKey,
        (  # a generator: a full night's keys are four rows per record
            {"record_key": r, "key": k, "floating": r in result.floating, "valid_from": night}
            for r in stale
            for k in result.keys[r]
        ),
    )


def _reviewed(result: Reconciliation) -> set[str]:
    """Both sides of every pending pair: each card involved awaits review (spec/policy.md)."""
    return {key for item in result.reviews for key in (item.record, item.candidate)}


def _insert_night_rows(
    conn: sa.Connection,
    night: int,
    extract: Extract,
    result: Reconciliation,
    changes: Sequence[CardChange],
    keys: KeyRing,
) -> None:
    # raw lines hold diagnoses, free text and addresses: sealed to their night and place
    _insert(conn, m.QuarantineRow, quarantine_insert_rows(night, extract.quarantine, keys))
    _insert(
        conn,
        m.FindingRow,
        [
            {
                "night_id": night,
                "register": f.register.value,
                "location": f.location,
                "kind": f.kind,
                "detail": f.detail,
            }
            for f in extract.findings
        ],
    )
    _insert(
        conn,
        m.ReviewRow,
        [
            {
                "night_id": night,
                "record_key": r.record,
                "candidate_key": r.candidate,
                "score": r.score,
                "evidence": r.evidence,
            }
            for r in result.reviews
        ],
    )
    _insert(
        conn,
        m.CardEvent,
        [
            {
                "night_id": night,
                "kind": c.kind,
                "old_ids": list(c.old_ids),
                "new_ids": list(c.new_ids),
            }
            for c in changes
        ],
    )


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _value(value: object) -> object:
    return getattr(value, "value", value)  # enums as their text


def _rows(
    groups: dict[str, RecordGroup],
    record_keys: Iterable[str],
    hashes: dict[str, str],
    night: int,
    ring: KeyRing,
) -> dict[type[m.Base], list[dict[str, Any]]]:
    rows: dict[type[m.Base], list[dict[str, Any]]] = defaultdict(list)

    def seal(table: str, column: str, key: str, value: str | None) -> str | None:
        return ring.encrypt(value, context(table, column, key))

    for key in record_keys:
        g = groups[key]
        p = g.person
        person = {name: _value(getattr(p, name)) for name in _field_names(type(p))}
        for dropped in ("name_raw", "registered_at", "changed_at"):
            person.pop(dropped)
        rows[m.SourceRecord].append(
            {**person, "record_key": key, "content_hash": hashes[key], "valid_from": night}
        )
        for h in g.history:
            rows[m.IdentHistoryRow].append(
                {
                    "record_key": key,
                    "location": h.location,
                    "ident": h.ident,
                    "valid_from_date": h.valid_from,
                    "valid_to_date": h.valid_to,
                    "valid_from": night,
                }
            )
        for b in g.benefits:
            rows[m.StateBenefitRow].append(
                {
                    "record_key": key,
                    "register": b.register.value,
                    "location": b.location,
                    "code": b.code,
                    "status": b.status,
                    "from_date": b.from_date,
                    "to_date": b.to_date,
                    "daily_rate": b.daily_rate,
                    "monthly_amount": b.monthly_amount,
                    "grade": b.grade,
                    "diagnosis": seal("state_benefit", "diagnosis", key, b.diagnosis),
                    "justification": seal("state_benefit", "justification", key, b.justification),
                    "valid_from": night,
                }
            )
        for x in g.measures:
            rows[m.MeasureRow].append(
                {
                    "record_key": key,
                    "location": x.location,
                    "code": x.code,
                    "status": x.status,
                    "from_date": x.from_date,
                    "to_date": x.to_date,
                    "organiser": x.organiser,
                    "valid_from": night,
                }
            )
        for s in g.services:
            rows[m.MunicipalServiceRow].append(
                {
                    "record_key": key,
                    "register": s.register.value,
                    "system": s.system,
                    "location": s.location,
                    "owner_kommune": s.owner_kommune,
                    "service": s.service.value,
                    "from_date": s.from_date,
                    "to_date": s.to_date,
                    "monthly_amount": s.monthly_amount,
                    "caseworker": s.caseworker,
                    "free_text": ring.encrypt(
                        s.free_text,
                        service_context(key, s.location, s.service.value, s.owner_kommune),
                        LINE_PREFIX,
                    ),
                    "valid_from": night,
                }
            )
    return rows


def driver_rows(conn: sa.Connection, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """A whole-table read's rows as the database driver returns them, in the connection's
    transaction: for the night's million-row reads of plain columns, SQLAlchemy's Row per row
    took longer than the database did. (No type processing: plain strings and numbers only.)"""
    compiled = statement.compile(dialect=conn.dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("driver_rows reads whole tables: no IN lists or literal parameters")
    order = compiled.positiontup
    params = [compiled.params[k] for k in order] if order is not None else compiled.params
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (a generator is consumed a chunk at a time): the store's
    one way to split a long IN list or a night's rows."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _breathe(conn: sa.Connection, *, force: bool = False) -> None:
    """On SQLite, commit what the night has written so far, at most every ``BREATHE`` seconds:
    SQLite has one writer, and a lookup's audit event waited for the whole night's write (10 s
    and more, then 503). The night's rows stay invisible until it is published, and a night
    that fails halfway is rolled back by its own night number (``rollback_unpublished_night``),
    so committing in steps changes nothing anyone can read. PostgreSQL writes in one go."""
    if conn.dialect.name != "sqlite":
        return
    if force and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        return  # nothing written since the last step
    now = time.monotonic()
    if force or now - conn.info.get("night_committed", 0.0) >= BREATHE:
        conn.commit()
        # a lookup waiting for the lock tries every millisecond (audit.log.begin_immediate);
        # without a gap the night's next statement would take the lock again at once
        time.sleep(SQLITE_GAP)
        conn.info["night_committed"] = time.monotonic()


def _close(
    conn: sa.Connection, table: type[m.Base], column: Any, keys: Sequence[str], night: int
) -> None:
    for chunk in _chunks(sorted(set(keys)), 500):
        conn.execute(
            sa.update(table)
            .where(column.in_(chunk), table.valid_to.is_(None))  # type: ignore[attr-defined]
            .values(valid_to=night)
        )
        _breathe(conn)
    _breathe(conn, force=True)  # what the caller computes next must not hold the lock


def _close_all(conn: sa.Connection, table: type[m.Base], night: int) -> None:
    """Close every current row of ``table``, in id ranges: one statement over a full night's
    match keys held SQLite's write lock for as long as it ran."""
    column = table.id  # type: ignore[attr-defined]
    low, high = conn.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    step = 20 * SQLITE_CHUNK if conn.dialect.name == "sqlite" else (high or 0) + 1
    for start in range(low or 0, (high or -1) + 1, step):
        conn.execute(
            sa.update(table)
            .where(column >= start, column < start + step, table.valid_to.is_(None))  # type: ignore[attr-defined]
            .values(valid_to=night)
        )
        _breathe(conn)
    _breathe(conn, force=True)


def _insert(conn: sa.Connection, table: type[m.Base], rows: Iterable[dict[str, Any]]) -> None:
    _in_chunks(conn, rows, lambda chunk: conn.execute(sa.insert(table), chunk))


def _in_chunks(conn: sa.Connection, rows: Iterable[Any], write: Callable[[list[Any]], Any]) -> None:
    """``write`` each chunk of ``rows``, breathing between them. On SQLite a chunk's insert
    is part of a hold: smaller ones keep each hold near BREATHE."""
    size = SQLITE_CHUNK if conn.dialect.name == "sqlite" else CHUNK
    for chunk in _chunks(rows, size):
        write(chunk)
        _breathe(conn)
    _breathe(conn, force=True)  # what the caller computes next must not hold the lock


def driver_insert(
    conn: sa.Connection,
    table: type[m.Base],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Rows of ``table`` (each a tuple in ``columns``' order) through the driver's
    executemany, in the connection's transaction, chunked and breathing like ``_insert``. A
    full night's feed is millions of rows, and SQLAlchemy's handling of each row's parameters
    took longer than the database did. Each value passes its column's own bind processor (the
    one SQLAlchemy applies), so what is stored is the same; a driver error is raised as
    SQLAlchemy's."""
    dialect = conn.dialect
    names = list(columns)
    statement = sa.insert(table).compile(dialect=dialect, column_keys=names)
    if set(statement.binds) != set(names):  # a column's default would need SQLAlchemy
        raise ValueError(f"driver_insert writes exactly its columns, not {sorted(statement.binds)}")
    order = statement.positiontup
    place = [names.index(name) for name in order] if order is not None else None
    columns_of = table.__table__.c  # type: ignore[attr-defined]
    processors = [
        (i, process)
        for i, name in enumerate(names)
        if (process := columns_of[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    sql = str(statement)
    dbapi = dialect.loaded_dbapi

    def write(chunk: list[Any]) -> None:
        values = [list(row) for row in chunk]
        for row in values:
            for i, process in processors:
                row[i] = process(row[i])
        params: list[Any] = (
            [tuple(row[i] for i in place) for row in values]
            if place is not None
            else [dict(zip(names, row, strict=True)) for row in values]
        )
        if not conn.in_transaction():
            # the driver begins one of its own; begun here too, so the breathing commit
            # (SQLAlchemy's) commits it: unknown to SQLAlchemy, a full night's feed was one
            # transaction, holding SQLite's write lock for the whole write
            conn.begin()
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, params)
        except dbapi.Error as exc:
            if isinstance(exc, dbapi.OperationalError | dbapi.InterfaceError):
                raise sa.exc.OperationalError(sql, None, exc) from exc
            raise sa.exc.DatabaseError(sql, None, exc) from exc
        finally:
            cursor.close()

    _in_chunks(conn, rows, write)
