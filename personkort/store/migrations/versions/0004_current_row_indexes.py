"""indexes for "the current rows of these records" on every per-record table

A night closes the rows of changed records with ``record_key IN (...) AND valid_to IS NULL``.
With only single-column indexes SQLite picked ``valid_to`` (every open row) and scanned.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("ident_history", "state_benefit", "measure", "municipal_service")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_current", table, ["record_key", "valid_to"], unique=False)
    op.create_index("ix_card_current", "card", ["card_id", "valid_to"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_card_current", table_name="card")
    for table in TABLES:
        op.drop_index(f"ix_{table}_current", table_name=table)
