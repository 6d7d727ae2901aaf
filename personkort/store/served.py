"""The served night's cards, read through a bounded in-process cache.

A published night never changes: the next night is built aside and takes over in one step. So a
card read for night N stays right for as long as N is served, and the cache is keyed by night
and needs no other invalidation. Consents are never cached: a consent registered or withdrawn
takes effect at the very next lookup, in every process. One lookup costs two small queries on
a warm cache (the served night, the person's consents) instead of nine.

The cache holds cards with their sensitive fields decrypted, in this process's memory only;
``size=0`` turns it off.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from personkort.card import Card
from personkort.consents import ConsentRecord
from personkort.feed import kinship, overlay
from personkort.freshness import NightFacts
from personkort.store import feed
from personkort.store import models as m
from personkort.store.cards import read_card
from personkort.store.consents import record_of
from personkort.store.crypto import KeyRing, key_ring
from personkort.store.deadline import Deadline
from personkort.store.nights import published_night
from personkort.store.pipelined import on_driver, translated
from personkort.store.queries import card_id_for_ident

_MISSING = object()
# What one card takes in the cache: the number it was looked up by, the card, its numbers and
# its feed facts. The size is a number of cards: counted in entries, 5,000 warm persons filled
# 20,000 entries, and a working set just over the bound missed every time (LRU, cyclic).
ENTRIES_PER_CARD = 4
# The served night, the feed's counters, the newest event naming the person and the person's
# consents in one statement (one row with no consent columns when there are none). Built once:
# a statement object keeps its compiled form.
_IDENTS = sa.bindparam("idents", expanding=True)
_STATE = sa.select(m.FeedState).where(m.FeedState.id == 1).subquery()
_LAST_EVENT = (
    sa.select(sa.func.max(m.FeedEventIdent.id))
    .where(m.FeedEventIdent.number.in_(_IDENTS))
    .scalar_subquery()
)
_NIGHT_AND_CONSENTS = (
    sa.select(
        m.Publication.night_id,
        sa.select(_STATE.c.generation).scalar_subquery().label("feed_generation"),
        _LAST_EVENT.label("last_event"),
        *m.ConsentRow.__table__.columns,
    )
    .select_from(m.Publication)
    .outerjoin(m.ConsentRow, m.ConsentRow.person_ident.in_(_IDENTS))
    .where(m.Publication.id == 1)
    .order_by(m.ConsentRow.id)
)
# The same statement in PostgreSQL's own syntax, run on the pooled connection's psycopg
# connection as a prepared statement: one text for any number of numbers (an array, not an
# expanded IN list). Through SQLAlchemy, its execution machinery was most of the one row's
# client CPU, the largest part of a warm lookup's read.
_CONSENT_COLUMNS = ", ".join(f"c.{c.name}" for c in m.ConsentRow.__table__.columns)
_PG_NIGHT_AND_CONSENTS = (
    f"SELECT p.night_id, s.generation AS feed_generation, "
    f"(SELECT max(e.id) FROM {m.FeedEventIdent.__tablename__} e "
    f"WHERE e.number = ANY(%(idents)s::varchar[])) AS last_event, {_CONSENT_COLUMNS} "
    f"FROM {m.Publication.__tablename__} p "
    f"LEFT JOIN {m.FeedState.__tablename__} s ON s.id = 1 "
    f"LEFT JOIN {m.ConsentRow.__tablename__} c ON c.person_ident = ANY(%(idents)s::varchar[]) "
    f"WHERE p.id = 1 ORDER BY c.id"
)


@dataclass(frozen=True, slots=True)
class _Current:
    night: int | None
    feed_generation: int  # moves with every accepted event batch and inbox state change
    feed_version: str  # moves when an event names this person
    consents: list[ConsentRecord]


def _night_and_consents(conn: sa.Connection, numbers: Iterable[str]) -> _Current:
    """``numbers``: every number of the person, the night card's and those the feed adds (a
    raise or a consent under the fødselsnummer that replaced the card's D-nummer counts)."""
    idents = sorted(numbers)
    if on_driver(conn):
        rows = _pg_rows(conn, idents)
    else:
        rows = conn.execute(_NIGHT_AND_CONSENTS, {"idents": idents}).all()
    if not rows:
        return _Current(None, 0, "", [])
    first = rows[0]
    return _Current(
        first.night_id,
        first.feed_generation or 0,
        str(first.last_event or 0),
        [record_of(r) for r in rows if r.id is not None],
    )


def _pg_rows(conn: sa.Connection, idents: list[str]) -> list[Any]:
    """``_PG_NIGHT_AND_CONSENTS`` on the driver, its errors raised as SQLAlchemy's."""
    from psycopg.rows import namedtuple_row  # the PostgreSQL driver; SQLite stores never get here

    driver = conn.connection.driver_connection
    with (
        translated(conn, "night and consents"),
        driver.cursor(row_factory=namedtuple_row) as cur,  # type: ignore[union-attr]
    ):
        cur.execute(_PG_NIGHT_AND_CONSENTS, {"idents": idents}, prepare=True)
        return cur.fetchall()


@dataclass(frozen=True, slots=True)
class Found:
    """What one lookup read: the served night, the card (None: no such person) and the
    consents given under any of the card's identity numbers."""

    night: int | None
    card: Card | None
    consents: list[ConsentRecord] = field(default_factory=list)
    facts: NightFacts | None = None  # the served night's sources, for the card's freshness


class ServedCards:
    def __init__(
        self,
        engine: sa.Engine,
        keys: KeyRing | None = None,
        size: int = 10_000,
        deadline: Deadline | None = None,
    ):
        """``size``: how many cards to keep (0: none); the cache holds ``ENTRIES_PER_CARD``
        entries each."""
        # Reads need no transaction: a published night is immutable and consents are read in
        # one statement. Autocommit saves the BEGIN and ROLLBACK round trips of each lookup.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._keys = keys  # None: the ring the settings name, read at each miss
        self.size = size * ENTRIES_PER_CARD  # entries
        self._night: int | None = None
        self._cache: OrderedDict[tuple[int, str, str], object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.deadline = deadline or Deadline(0)

    def by_ident(self, ident: str, pid: str | None = None) -> Found:
        """The served card holding this identity number, current or earlier (StoreTimeout
        past the deadline). ``pid``: the looking caseworker's own number; the card then says
        what they are to its person (``Card.kin``), for the relatives gate."""
        return self.deadline.run(lambda: self._by_ident(ident, pid))

    def by_card_id(self, card_id: str, pid: str | None = None) -> Found:
        return self.deadline.run(lambda: self._by_card_id(card_id, pid))

    def _by_ident(self, ident: str, pid: str | None) -> Found:
        with self.engine.connect() as conn:
            quick = self._from_cache(conn, ident, pid)
            if quick is not None:
                return quick
            night = self._served(conn)
            if night is None:
                return Found(None, None)
            card_id = self._cached(
                (night, "ident", ident), lambda: card_id_for_ident(conn, night, ident)
            )
            if card_id is None:  # a number only the feed knows: a new one, or an old D-nummer
                card_id = feed.card_via_feed(conn, night, ident)
            return self._found(conn, night, card_id, pid)  # type: ignore[arg-type]

    def _by_card_id(self, card_id: str, pid: str | None) -> Found:
        with self.engine.connect() as conn:
            night = self._served(conn)
            if night is None:
                return Found(None, None)
            return self._found(conn, night, card_id, pid)

    def _from_cache(self, conn: sa.Connection, ident: str, pid: str | None) -> Found | None:
        """The hot path, one round trip: a card cached for the night last seen, with the
        served night and the consents read in one statement. None (take the slow path) on a
        miss, or if another night has been published since."""
        with self._lock:
            night = self._night
            card_id = self._cache.get((night, "ident", ident), _MISSING)  # type: ignore[arg-type]
            card = self._cache.get((night, "card", card_id), _MISSING)  # type: ignore[arg-type]
            if night is None or not isinstance(card, Card):
                return None
            self._cache.move_to_end((night, "ident", ident))  # recently used: kept longest
            self._cache.move_to_end((night, "card", card_id))  # type: ignore[arg-type]
            self.hits += 1
        current = _night_and_consents(conn, self._numbers(card))
        if current.night != night:
            return None
        return self._with_feed(conn, card, current, pid)

    def _found(
        self, conn: sa.Connection, night: int, card_id: str | None, pid: str | None
    ) -> Found:
        if card_id is None:
            return Found(night, None)
        keys = self._keys or key_ring()
        card = self._cached((night, "card", card_id), lambda: read_card(conn, card_id, night, keys))
        if card is None:
            return Found(night, None)
        assert isinstance(card, Card)
        return self._with_feed(conn, card, _night_and_consents(conn, self._numbers(card)), pid)

    def _numbers(self, card: Card) -> frozenset[str]:
        """The person's numbers as the last lookup of the card saw them (the feed's included)."""
        with self._lock:
            known = self._cache.get((card.night, "numbers", card.card_id))
        return known if isinstance(known, frozenset) else frozenset(card.all_idents)

    def _with_feed(
        self, conn: sa.Connection, card: Card, current: _Current, pid: str | None
    ) -> Found:
        """The night's card with the feed's facts laid over it, read again as soon as an event
        says something new about the person (protection raised today counts now), and what
        the caseworker with ``pid`` is to its person."""
        # A card's feed facts change when an event names its person: read again then.
        version, generation = f"feed:{current.feed_version}", f"state:{current.feed_generation}"
        facts = self._cached(
            (card.night, version, card.card_id), lambda: feed.facts_for(conn, card)
        )
        night = self._cached(
            (card.night, generation, ""), lambda: feed.night_facts(conn, card.night)
        )
        assert isinstance(facts, overlay.FeedFacts) and isinstance(night, NightFacts)
        shown = overlay.apply(card, facts)
        numbers = frozenset(shown.all_idents)
        if self.size and numbers != self._numbers(card):
            with self._lock:  # the next lookup watches (and finds consents under) all of them
                self._cache[(card.night, "numbers", card.card_id)] = numbers
        if pid is not None:
            # The caseworker's relatives, read once per caseworker for as long as no event has
            # arrived (any event may add a relation or a number to them or theirs).
            kin = self._cached(
                (card.night, f"kin:{current.feed_generation}", pid),
                lambda: feed.kin_of(conn, card.night, pid),
            )
            assert isinstance(kin, dict)
            relation = kinship.closest(kin[n] for n in numbers if n in kin)
            if relation is not None:
                shown = dataclasses.replace(shown, kin={pid: kinship.mutual(relation)})
        return Found(card.night, shown, current.consents, night)

    def _served(self, conn: sa.Connection) -> int | None:
        night = published_night(conn)
        with self._lock:
            if night != self._night:
                self._cache.clear()
                self._night = night
        return night

    def _cached(self, key: tuple[int, str, str], read: object) -> object:
        """The cached value for ``key`` (night first), else ``read()`` remembered.
        Two threads missing at once both read; the results are equal, one is kept."""
        with self._lock:
            value = self._cache.get(key, _MISSING)
            if value is not _MISSING:
                self._cache.move_to_end(key)
                self.hits += 1
                return value
            self.misses += 1
        value = read()  # type: ignore[operator]
        if self.size:
            with self._lock:
                if key[0] == self._night:  # not a card of a night that has since been replaced
                    self._cache[key] = value
                    while len(self._cache) > self.size:
                        self._cache.popitem(last=False)
        return value
