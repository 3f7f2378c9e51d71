"""checklists

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:15:43.596100
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checklist",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("document_number", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issuing_body", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("replaces", sa.JSON(), nullable=True),
        sa.Column("superseded_by", sa.JSON(), nullable=True),
        sa.Column("official_item_count", sa.Integer(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("combination_rules", sa.JSON(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("major_item_count", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("source_file", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("published_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_checklist_code_version")),
    )
    with op.batch_alter_table("checklist", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checklist_code"), ["code"], unique=False)
        batch_op.create_index(batch_op.f("ix_checklist_topic"), ["topic"], unique=False)

    op.create_table(
        "checklist_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checklist_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.JSON(), nullable=False),
        sa.Column("major_hazard", sa.Boolean(), nullable=False),
        sa.Column("rectify_days", sa.Integer(), nullable=False),
        sa.Column("min_photos", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["checklist_id"], ["checklist.id"], name=op.f("fk_checklist_item_checklist_id_checklist")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_item")),
        sa.UniqueConstraint("checklist_id", "code", name=op.f("uq_checklist_item_checklist_id_code")),
    )
    with op.batch_alter_table("checklist_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checklist_item_checklist_id"), ["checklist_id"], unique=False)
    # A published checklist version is immutable: a change is a new version, never an edit.
    forbid_changes("checklist")
    forbid_changes("checklist_item")


def downgrade() -> None:
    allow_changes("checklist_item")
    allow_changes("checklist")
    with op.batch_alter_table("checklist_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checklist_item_checklist_id"))

    op.drop_table("checklist_item")
    with op.batch_alter_table("checklist", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checklist_topic"))
        batch_op.drop_index(batch_op.f("ix_checklist_code"))

    op.drop_table("checklist")
