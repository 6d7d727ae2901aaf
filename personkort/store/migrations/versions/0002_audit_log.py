"""audit log: hash-chained events and signed checkpoints

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXED = (
    "kind",
    "at",
    "trace_id",
    "caseworker",
    "card_id",
    "ident_hmac",
    "decision",
    "privileged",
)


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("leaf", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=40), nullable=True),
        sa.Column("caseworker", sa.String(length=40), nullable=True),
        sa.Column("card_id", sa.String(length=24), nullable=True),
        sa.Column("ident_hmac", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("privileged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    for column in INDEXED:
        op.create_index(f"ix_audit_event_{column}", "audit_event", [column], unique=False)
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tree_size"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    for column in INDEXED:
        op.drop_index(f"ix_audit_event_{column}", table_name="audit_event")
    op.drop_table("audit_event")
