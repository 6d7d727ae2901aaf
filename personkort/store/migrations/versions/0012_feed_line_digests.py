"""the snapshot in force keeps its persons' line digests and keys in two values

A night's reader needs every line digest the store holds, with its person's key, to leave
unchanged lines unparsed: a million rows of ``feed_person`` read each night (seconds, more
when the table's pages are not cached). The night that writes a snapshot now also stores
the whole map on its ``feed_snapshot`` row, with a check (the open rows' count and id sum,
and a digest of the two values), and the reader loads them. Older rows have none and are
read as before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feed_snapshot", sa.Column("line_digests", sa.Text(), nullable=True))
    op.add_column("feed_snapshot", sa.Column("line_keys", sa.Text(), nullable=True))
    op.add_column("feed_snapshot", sa.Column("line_check", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed_snapshot") as batch:
        batch.drop_column("line_check")
        batch.drop_column("line_keys")
        batch.drop_column("line_digests")
