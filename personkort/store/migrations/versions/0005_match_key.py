"""match_key: the keys reconciliation matched each record by, for incremental nights

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_key",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("record_key", sa.String(length=80), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("floating", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.Integer(), nullable=False),
        sa.Column("valid_to", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_match_key_current", "match_key", ["record_key", "valid_to"], unique=False)
    op.create_index("ix_match_key_key", "match_key", ["key", "valid_to"], unique=False)
    op.create_index(op.f("ix_match_key_valid_from"), "match_key", ["valid_from"], unique=False)
    op.create_index(op.f("ix_match_key_valid_to"), "match_key", ["valid_to"], unique=False)


def downgrade() -> None:
    op.drop_table("match_key")
