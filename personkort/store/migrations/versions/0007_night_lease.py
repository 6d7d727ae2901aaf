"""night_lease: one night at a time per store

Revision ID: 0007
Revises: 0006

The single row every night takes before it writes (personkort/store/lease.py). A store that
is mid-night while it is migrated has no holder recorded: that night's publish is refused and
it reruns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lease = op.create_table(
        "night_lease",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("night_id", sa.Integer(), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(lease, [{"id": 1}])


def downgrade() -> None:
    op.drop_table("night_lease")
