"""The personkort store: SQLAlchemy 2 typed tables, SQLite embedded, PostgreSQL in production.

Night-versioned rows. Every row of a table that describes the current state carries
``valid_from`` (the night that wrote it) and ``valid_to`` (the night that replaced it, or NULL).
Readers see night N as ``valid_from <= N AND (valid_to IS NULL OR valid_to > N)`` for the night
named in ``publication``. A new night writes only what changed, beside the served one, and
becomes visible when the one-row ``publication`` pointer moves: a night that fails or is refused
leaves yesterday's cards served, and history is kept for auditors.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NIGHT_FK = "night.id"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A moment, stored in UTC and read back aware. SQLite keeps no offset, and SQLAlchemy
    stores an aware value's wall time as given: a snapshot of 01:10+01:00 came back as 01:10
    UTC, an hour late (the same snapshot again was "older than the one in force", and the
    day's events were compared with the wrong hour). PostgreSQL's ``timestamptz`` is as before."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None or value.tzinfo is None:
            return value  # a naive value is taken as UTC already, as it was
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, Decimal: Numeric(14, 2)}


class Night(Base):
    """One nightly run: what it read, what became of it, and its report."""

    __tablename__ = "night"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    drop_dir: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # running published failed refused unchanged
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class Publication(Base):
    """The one row that says which night readers see. Moving it publishes a night."""

    __tablename__ = "publication"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class NightLease(Base):
    """The one row that says which night may write (personkort/store/lease.py)."""

    __tablename__ = "night_lease"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    night_id: Mapped[int | None] = mapped_column(Integer)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class _Versioned:
    valid_from: Mapped[int] = mapped_column(Integer, index=True)
    valid_to: Mapped[int | None] = mapped_column(Integer, index=True)


class SourceRecord(_Versioned, Base):
    """A register's description of a person, with provenance: register, key, location, night."""

    __tablename__ = "source_record"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    register: Mapped[str] = mapped_column(String(12))
    source_key: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(32))
    ident: Mapped[str | None] = mapped_column(String(16), index=True)
    surname: Mapped[str] = mapped_column(String(100))
    given_names: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(String(120))
    postnr: Mapped[str | None] = mapped_column(String(8))
    poststed: Mapped[str | None] = mapped_column(String(60))
    kommunenr: Mapped[str | None] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(30))
    protection: Mapped[str | None] = mapped_column(String(20))
    skjermet: Mapped[bool | None] = mapped_column(Boolean)
    owner_kommune: Mapped[str | None] = mapped_column(String(8))
    ident_type: Mapped[str | None] = mapped_column(String(8))
    nav_office: Mapped[str | None] = mapped_column(String(40))
    veileder: Mapped[str | None] = mapped_column(String(16))
    formidlingsgruppe: Mapped[str | None] = mapped_column(String(8))
    kvalifiseringsgruppe: Mapped[str | None] = mapped_column(String(8))


class IdentHistoryRow(_Versioned, Base):
    __tablename__ = "ident_history"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    location: Mapped[str] = mapped_column(String(64))
    ident: Mapped[str] = mapped_column(String(16), index=True)
    valid_from_date: Mapped[dt.date | None] = mapped_column(Date)
    valid_to_date: Mapped[dt.date | None] = mapped_column(Date)


class StateBenefitRow(_Versioned, Base):
    __tablename__ = "state_benefit"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    register: Mapped[str] = mapped_column(String(12))
    location: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str | None] = mapped_column(String(8))
    from_date: Mapped[dt.date] = mapped_column(Date)
    to_date: Mapped[dt.date | None] = mapped_column(Date)
    daily_rate: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    monthly_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    grade: Mapped[int | None] = mapped_column(Integer)
    diagnosis: Mapped[str | None] = mapped_column(Text)  # encrypted at rest
    justification: Mapped[str | None] = mapped_column(Text)  # encrypted at rest


class MeasureRow(_Versioned, Base):
    __tablename__ = "measure"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    location: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))
    from_date: Mapped[dt.date | None] = mapped_column(Date)
    to_date: Mapped[dt.date | None] = mapped_column(Date)
    organiser: Mapped[str | None] = mapped_column(String(120))


class MunicipalServiceRow(_Versioned, Base):
    __tablename__ = "municipal_service"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    register: Mapped[str] = mapped_column(String(12))
    system: Mapped[str] = mapped_column(String(12))
    location: Mapped[str] = mapped_column(String(64))
    owner_kommune: Mapped[str] = mapped_column(String(8))
    service: Mapped[str] = mapped_column(String(8))
    from_date: Mapped[dt.date] = mapped_column(Date)
    to_date: Mapped[dt.date | None] = mapped_column(Date)
    monthly_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    caseworker: Mapped[str | None] = mapped_column(String(40))
    free_text: Mapped[str | None] = mapped_column(Text)  # encrypted at rest


class CardLink(_Versioned, Base):
    """The link table: which source record is on which card."""

    __tablename__ = "card_link"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80), index=True)
    card_id: Mapped[str] = mapped_column(String(24), index=True)


class MatchKey(_Versioned, Base):
    """What reconciliation keyed a record by (identity numbers, blocks), 64-bit hashed, and
    whether the record was left without a trusted number: the index an incremental night uses to
    find which records a changed one could touch (``personkort.reconcile.incremental``)."""

    __tablename__ = "match_key"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_key: Mapped[str] = mapped_column(String(80))
    key: Mapped[int] = mapped_column(BigInteger)
    floating: Mapped[bool] = mapped_column(Boolean)


class Card(_Versioned, Base):
    """A person card: its stable id and what reconciliation concluded about it."""

    __tablename__ = "card"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    card_id: Mapped[str] = mapped_column(String(24), index=True)
    protection: Mapped[str | None] = mapped_column(String(20))
    skjermet: Mapped[bool] = mapped_column(Boolean)
    pending_review: Mapped[bool] = mapped_column(Boolean)
    records: Mapped[int] = mapped_column(Integer)


class CardEvent(Base):
    """A merge, split, creation or retirement of cards, mapping old ids to new ones."""

    __tablename__ = "card_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # merge split merge_split retired
    old_ids: Mapped[list[str]] = mapped_column(JSON)
    new_ids: Mapped[list[str]] = mapped_column(JSON)


class ReviewRow(Base):
    """An uncertain pair a data steward must settle, as found by one night."""

    __tablename__ = "review_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK), index=True)
    record_key: Mapped[str] = mapped_column(String(80))
    candidate_key: Mapped[str] = mapped_column(String(80))
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)


class DecisionRow(Base):
    """A steward's ruling on two records; binds every later night."""

    __tablename__ = "steward_decision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_a: Mapped[str] = mapped_column(String(80))
    record_b: Mapped[str] = mapped_column(String(80))
    same: Mapped[bool] = mapped_column(Boolean)
    steward: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class QuarantineRow(Base):
    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK), index=True)
    register: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class FindingRow(Base):
    __tablename__ = "finding"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK), index=True)
    register: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)


Index("ix_card_link_current", CardLink.record_key, CardLink.valid_to)
Index("ix_match_key_current", MatchKey.record_key, MatchKey.valid_to)
Index("ix_match_key_key", MatchKey.key, MatchKey.valid_to)
Index("ix_source_record_current", SourceRecord.record_key, SourceRecord.valid_to)
for _table in (IdentHistoryRow, StateBenefitRow, MeasureRow, MunicipalServiceRow):
    Index(f"ix_{_table.__tablename__}_current", _table.record_key, _table.valid_to)
Index("ix_card_current", Card.card_id, Card.valid_to)


class FeedPersonRow(_Versioned, Base):
    """One person of the Folkeregister snapshot, versioned by the night that read it: a night
    without a snapshot writes none, so the last one read stays in force (spec: "keeps the last
    state it had"). ``idents`` and ``relations`` are the line's lists, as JSON."""

    __tablename__ = "feed_person"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_key: Mapped[str] = mapped_column(String(16))  # the number in use
    digest: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(64))
    given_names: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    gradering: Mapped[str] = mapped_column(String(30))
    death_date: Mapped[dt.date | None] = mapped_column(Date)
    changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    idents: Mapped[list[Any]] = mapped_column(JSON)  # [[number, type, in_use], ...]
    numbers: Mapped[int] = mapped_column(Integer)  # how many: more than one is evidence
    relations: Mapped[list[Any]] = mapped_column(JSON)  # [[related, role], ...]


class FeedIdentRow(_Versioned, Base):
    """Every number the snapshot holds, and whose it is."""

    __tablename__ = "feed_ident"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(16))
    person_key: Mapped[str] = mapped_column(String(16))


class FeedRelationRow(_Versioned, Base):
    """Every relation the snapshot states, found from either end."""

    __tablename__ = "feed_relation"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(16))
    related: Mapped[str] = mapped_column(String(16), index=True)
    role: Mapped[str] = mapped_column(String(24))


class FeedSnapshotRow(Base):
    """Which snapshot a night read (none: that night had none, the one before stays)."""

    __tablename__ = "feed_snapshot"
    night_id: Mapped[int] = mapped_column(ForeignKey(NIGHT_FK), primary_key=True)
    file: Mapped[str] = mapped_column(String(120))
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    persons: Mapped[int] = mapped_column(Integer)
    # Every line digest of the snapshot persons the night left in force (32 hex characters
    # each) and their keys, in the same order, "\n" between the items of each: the next night's
    # reader loads these two values instead of a million rows. ``line_check``: how many open
    # rows, the sum of their ids and a digest of the two values, as written; the map is used
    # only while they still hold (personkort/store/feed.py: known_digests). Kept on the
    # snapshot in force and the one before it; None on older ones.
    line_digests: Mapped[str | None] = mapped_column(Text)
    line_keys: Mapped[str | None] = mapped_column(Text)
    line_check: Mapped[str | None] = mapped_column(String(120))


class FeedEventRow(Base):
    """An event of the day, stored once by its ``hendelseId`` whatever its delivery."""

    __tablename__ = "feed_event"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    change: Mapped[str] = mapped_column(String(16))
    replaces: Mapped[str | None] = mapped_column(String(100))
    idents: Mapped[list[Any]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    location: Mapped[str] = mapped_column(String(200))


class FeedEventIdent(Base):
    """The numbers an event names: a lookup finds a person's events by any of them."""

    __tablename__ = "feed_event_ident"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), index=True)
    number: Mapped[str] = mapped_column(String(16), index=True)


class FeedEventQuarantine(Base):
    """An event that could not be read, kept whole (sealed) with where it came from and why."""

    __tablename__ = "feed_event_quarantine"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    location: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)


class FeedState(Base):
    """One row: counters the accepted event batches move (each API process reads a card's feed
    facts again when they changed: personkort/store/served.py), and how the inbox was last
    read."""

    __tablename__ = "feed_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    generation: Mapped[int] = mapped_column(BigInteger)
    # Moved by relation events until the relatives gate asked the caseworker's side (keyed by
    # ``generation``); no longer written or read, kept so older stores need no migration.
    relations_generation: Mapped[int] = mapped_column(BigInteger)
    inbox_read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    inbox_error: Mapped[str | None] = mapped_column(Text)


# Each key column is found through its (column, valid_to) index; a night writes a million
# persons' rows, and each index more is another B-tree to insert every row into (0011).
Index("ix_feed_person_current", FeedPersonRow.person_key, FeedPersonRow.valid_to)
Index("ix_feed_ident_current", FeedIdentRow.number, FeedIdentRow.valid_to)
Index("ix_feed_ident_person_current", FeedIdentRow.person_key, FeedIdentRow.valid_to)
Index("ix_feed_relation_current", FeedRelationRow.holder, FeedRelationRow.valid_to)


class EndedSession(Base):
    """A page session signed out before its token expired: refused from then on, in every
    process (web/session.py). Kept until the token would have expired anyway."""

    __tablename__ = "ended_session"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class ConsentRow(Base):
    """A client's written consent to one office (samtykkeerklæring), found by identity number so
    it follows the person through card merges and splits."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_ident: Mapped[str] = mapped_column(String(16), index=True)
    office: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    form_reference: Mapped[str] = mapped_column(String(200))
    registered_by: Mapped[str] = mapped_column(String(40))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by: Mapped[str | None] = mapped_column(String(40))


class PolicyVersionRow(Base):
    """Every policy version that was ever activated, with its files, for auditors' diffs."""

    __tablename__ = "policy_version"
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    files: Mapped[dict[str, Any]] = mapped_column(JSON)
    activated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
