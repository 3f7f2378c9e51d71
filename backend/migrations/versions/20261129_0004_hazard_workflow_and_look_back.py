"""hazard workflow and look-back

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:31:36.304450
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import backend.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lookback_due_at", backend.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index(batch_op.f("ix_hazard_enterprise_id"))
        batch_op.drop_index(batch_op.f("ix_hazard_level"))
        batch_op.drop_index(batch_op.f("ix_hazard_status"))
        batch_op.drop_index(batch_op.f("ix_hazard_topic"))
        batch_op.create_index("ix_hazard_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_hazard_enterprise_created_at_id", ["enterprise_id", "created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_lookback_due_at"), ["lookback_due_at"], unique=False)
        batch_op.create_index("ix_hazard_status_created_at_id", ["status", "created_at", "id"], unique=False)
        batch_op.create_index("ix_hazard_topic_created_at_id", ["topic", "created_at", "id"], unique=False)

    # A plain ADD COLUMN (no table rebuild on SQLite) keeps the append-only triggers of hazard_event in place.
    op.add_column("hazard_event", sa.Column("data", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    op.drop_column("hazard_event", "data")

    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.drop_index("ix_hazard_topic_created_at_id")
        batch_op.drop_index("ix_hazard_status_created_at_id")
        batch_op.drop_index(batch_op.f("ix_hazard_lookback_due_at"))
        batch_op.drop_index("ix_hazard_enterprise_created_at_id")
        batch_op.drop_index("ix_hazard_created_at_id")
        batch_op.create_index(batch_op.f("ix_hazard_topic"), ["topic"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_hazard_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.drop_column("lookback_due_at")
