"""hazard tally

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 11:22:00.892267
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from backend.hazards.tally import rebuild_sql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hazard_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("close_days", sa.Integer(), nullable=False),
        sa.Column("recurred", sa.Boolean(), nullable=False),
        sa.Column("hazards", sa.Integer(), nullable=False),
        sa.Column("recurrences", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_hazard_tally_enterprise_id_enterprise")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_tally")),
        sa.UniqueConstraint("enterprise_id", "topic", "level", "status", "close_days", "recurred", name="uq_hazard_tally_key"),
    )
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hazard_rectifying_deadline",
            ["deadline"],
            unique=False,
            postgresql_where=sa.text("status = 'rectifying'"),
            sqlite_where=sa.text("status = 'rectifying'"),
            postgresql_include=["enterprise_id", "topic", "level"],
        )

    # count the hazards that exist already
    for statement in rebuild_sql(op.get_bind().dialect.name).split("; "):
        op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_hazard_rectifying_deadline",
            postgresql_where=sa.text("status = 'rectifying'"),
            sqlite_where=sa.text("status = 'rectifying'"),
        )

    op.drop_table("hazard_tally")
