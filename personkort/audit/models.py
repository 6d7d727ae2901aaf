"""The audit tables: append-only events, hash-chained, and signed checkpoints over them."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from personkort.store.models import Base


class AuditEventRow(Base):
    """One audit event. ``body`` is the canonical serialisation that the hash covers; the other
    columns are indexes into it for auditors' queries."""

    __tablename__ = "audit_event"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[str] = mapped_column(String(32), index=True)  # RFC 3339 UTC, microseconds
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    leaf: Mapped[str] = mapped_column(String(64))  # RFC 6962 leaf hash of body
    trace_id: Mapped[str | None] = mapped_column(String(40), index=True)
    caseworker: Mapped[str | None] = mapped_column(String(40), index=True)
    card_id: Mapped[str | None] = mapped_column(String(24), index=True)
    ident_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    decision: Mapped[str | None] = mapped_column(String(16), index=True)
    privileged: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class AuditCheckpointRow(Base):
    """A signed statement: the first ``tree_size`` events have this Merkle root and chain head."""

    __tablename__ = "audit_checkpoint"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(Integer, unique=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEventIdentRow(Base):
    """One identity number an event names, as its keyed hash (migration 0006): the number
    typed, every number on the card looked up, every number in the event's text. The event's
    body lists the same hashes (``data.ident_hmacs``), and verify checks that they agree."""

    __tablename__ = "audit_event_ident"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ident_hmac: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
