"""ended_session: page sessions signed out before their tokens expired

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ended_session",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_ended_session_expires_at", "ended_session", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_ended_session_expires_at", table_name="ended_session")
    op.drop_table("ended_session")
