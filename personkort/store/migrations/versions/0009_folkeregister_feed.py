"""folkeregister feed: the snapshot (persons, numbers, relations), the day's events, its state

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _versioned() -> list[sa.Column]:
    return [
        sa.Column("valid_from", sa.Integer(), nullable=False),
        sa.Column("valid_to", sa.Integer(), nullable=True),
    ]


def upgrade() -> None:
    # "folkeregister" is longer than the three registers' names: quarantine and findings hold it.
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR's length
        for table in ("quarantine", "finding"):
            op.alter_column(table, "register", type_=sa.String(16), existing_nullable=False)
    op.create_table(
        "feed_person",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("person_key", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("given_names", sa.String(100), nullable=False),
        sa.Column("middle_name", sa.String(100), nullable=True),
        sa.Column("surname", sa.String(100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("gradering", sa.String(30), nullable=False),
        sa.Column("death_date", sa.Date(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idents", sa.JSON(), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        sa.Column("relations", sa.JSON(), nullable=False),
        *_versioned(),
    )
    op.create_table(
        "feed_ident",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("person_key", sa.String(16), nullable=False),
        *_versioned(),
    )
    op.create_table(
        "feed_relation",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("holder", sa.String(16), nullable=False),
        sa.Column("related", sa.String(16), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        *_versioned(),
    )
    for table, columns in (
        ("feed_person", ("person_key", "valid_from", "valid_to")),
        ("feed_ident", ("number", "person_key", "valid_from", "valid_to")),
        ("feed_relation", ("holder", "related", "valid_from", "valid_to")),
    ):
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column])
    op.create_index("ix_feed_person_current", "feed_person", ["person_key", "valid_to"])
    op.create_index("ix_feed_ident_current", "feed_ident", ["number", "valid_to"])
    op.create_table(
        "feed_snapshot",
        sa.Column("night_id", sa.Integer(), sa.ForeignKey("night.id"), primary_key=True),
        sa.Column("file", sa.String(120), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
    )
    op.create_table(
        "feed_event",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=False, unique=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("replaces", sa.String(100), nullable=True),
        sa.Column("idents", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
    )
    op.create_index("ix_feed_event_created", "feed_event", ["created"])
    op.create_table(
        "feed_event_ident",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
    )
    op.create_index("ix_feed_event_ident_event_id", "feed_event_ident", ["event_id"])
    op.create_index("ix_feed_event_ident_number", "feed_event_ident", ["number"])
    op.create_table(
        "feed_event_quarantine",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_feed_event_quarantine_received_at", "feed_event_quarantine", ["received_at"]
    )
    op.create_table(
        "feed_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("relations_generation", sa.BigInteger(), nullable=False),
        sa.Column("inbox_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inbox_error", sa.Text(), nullable=True),
    )
    op.execute("INSERT INTO feed_state (id, generation, relations_generation) VALUES (1, 0, 0)")


def downgrade() -> None:
    for table in (
        "feed_state",
        "feed_event_quarantine",
        "feed_event_ident",
        "feed_event",
        "feed_snapshot",
        "feed_relation",
        "feed_ident",
        "feed_person",
    ):
        op.drop_table(table)
