"""audit_event_ident: every identity number an audit event names, as its keyed hash

Revision ID: 0006
Revises: 0005

The index is filled from the typed numbers already stored (``audit_event.ident_hmac``). From
this revision on the chain is keyed (HMAC-SHA256 under a key derived from the audit secret):
events written before it fail ``audit verify`` as unkeyed, so a store with older events is
rebuilt (there are no production stores from before; ``make run`` builds the demo's afresh).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event_ident",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ident_hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", "ident_hmac"),
    )
    op.create_index(
        "ix_audit_event_ident_ident_hmac", "audit_event_ident", ["ident_hmac"], unique=False
    )
    op.execute(
        "INSERT INTO audit_event_ident (seq, ident_hmac) "
        "SELECT seq, ident_hmac FROM audit_event WHERE ident_hmac IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_event_ident_ident_hmac", table_name="audit_event_ident")
    op.drop_table("audit_event_ident")
