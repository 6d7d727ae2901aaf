"""fewer indexes for a night to fill on the Folkeregister tables

Every key column of ``feed_person``, ``feed_ident`` and ``feed_relation`` had an index of its
own beside its ``(column, valid_to)`` index, which serves every query the single one did (its
leading column): a full night inserts each of a million persons' rows into each index.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COVERED = (
    ("ix_feed_person_person_key", "feed_person", "person_key"),
    ("ix_feed_ident_number", "feed_ident", "number"),
    ("ix_feed_ident_person_key", "feed_ident", "person_key"),
    ("ix_feed_relation_holder", "feed_relation", "holder"),
)


def upgrade() -> None:
    for name, table, _ in COVERED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in COVERED:
        op.create_index(name, table, [column])
