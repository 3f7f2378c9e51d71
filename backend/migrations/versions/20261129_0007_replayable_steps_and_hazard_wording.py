"""replayable workflow steps; the hazard keeps the inspector's words and the item's text apart

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMELINES = ("hazard_event", "case_event")


def upgrade() -> None:
    for table in TIMELINES:
        op.add_column(table, sa.Column("client_id", sa.Uuid(), nullable=True))
        op.add_column(table, sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        op.create_index(op.f(f"ix_{table}_client_id"), table, ["client_id"], unique=True)
    op.add_column("hazard", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("hazard", sa.Column("item_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hazard") as batch:
        batch.drop_column("item_text")
        batch.drop_column("note")
    for table in TIMELINES:
        op.drop_index(op.f(f"ix_{table}_client_id"), table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("fingerprint")
            batch.drop_column("client_id")
