"""planning: 分类分级 with history, annual plans, 双随机 draws with their snapshots, tasks, declared conflicts

Classifications, conflicts and draws are append-only (a trigger refuses UPDATE and DELETE): a new classification is a
new row, and a draw is the evidence that a selection was fair. Tasks change status through their workflow.

Chained after 0011 (the penalty procedure's groundwork); another branch may add 0012, and merging re-chains this
revision after it.

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-29 18:27:45
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("enterprise_classification", "inspector_conflict", "draw")


def upgrade() -> None:
    op.create_table(
        "enterprise_classification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("risk_level", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_enterprise_classification_created_by_app_user")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_enterprise_classification_enterprise_id_enterprise")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_classification")),
    )
    op.create_index(
        "ix_enterprise_classification_in_force", "enterprise_classification", ["enterprise_id", "valid_from", "created_at"], unique=False
    )
    op.create_table(
        "inspector_conflict",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("declared_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["declared_by"], ["app_user.id"], name=op.f("fk_inspector_conflict_declared_by_app_user")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_inspector_conflict_enterprise_id_enterprise")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_inspector_conflict_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspector_conflict")),
        sa.UniqueConstraint("user_id", "enterprise_id", name=op.f("uq_inspector_conflict_user_id_enterprise_id")),
    )
    op.create_index(op.f("ix_inspector_conflict_enterprise_id"), "inspector_conflict", ["enterprise_id"], unique=False)
    op.create_index(op.f("ix_inspector_conflict_user_id"), "inspector_conflict", ["user_id"], unique=False)
    op.create_table(
        "plan",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("approved_by", sa.Uuid(), nullable=True),
        sa.Column("approved_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_plan_agency_id_agency")),
        sa.ForeignKeyConstraint(["approved_by"], ["app_user.id"], name=op.f("fk_plan_approved_by_app_user")),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_plan_created_by_app_user")),
        sa.ForeignKeyConstraint(["supersedes_id"], ["plan.id"], name=op.f("fk_plan_supersedes_id_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint("agency_id", "year", "version", name=op.f("uq_plan_agency_id_year_version")),
        sa.UniqueConstraint("supersedes_id", name=op.f("uq_plan_supersedes_id")),
    )
    op.create_index(op.f("ix_plan_agency_id"), "plan", ["agency_id"], unique=False)
    op.create_index("ix_plan_created_at_id", "plan", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_plan_status"), "plan", ["status"], unique=False)
    op.create_table(
        "draw",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("rule_index", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("drawn_on", sa.Date(), nullable=False),
        sa.Column("seed", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("population_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("population", sa.Text(), nullable=False),
        sa.Column("population_size", sa.Integer(), nullable=False),
        sa.Column("inspectors_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("inspectors", sa.Text(), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("inspectors_per_task", sa.Integer(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_draw_created_by_app_user")),
        sa.ForeignKeyConstraint(["plan_id"], ["plan.id"], name=op.f("fk_draw_plan_id_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draw")),
    )
    op.create_index("ix_draw_created_at_id", "draw", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_draw_plan_id"), "draw", ["plan_id"], unique=False)
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("draw_id", sa.Uuid(), nullable=False),
        sa.Column("rule_index", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("inspector_ids", sa.JSON(), nullable=False),
        sa.Column("due_by", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["draw_id"], ["draw.id"], name=op.f("fk_task_draw_id_draw")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_task_enterprise_id_enterprise")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], name=op.f("fk_task_inspection_id_inspection")),
        sa.ForeignKeyConstraint(["plan_id"], ["plan.id"], name=op.f("fk_task_plan_id_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("draw_id", "enterprise_id", "visit", name=op.f("uq_task_draw_id_enterprise_id_visit")),
        sa.UniqueConstraint("inspection_id", name=op.f("uq_task_inspection_id")),
    )
    op.create_index("ix_task_created_at_id", "task", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_task_draw_id"), "task", ["draw_id"], unique=False)
    op.create_index(op.f("ix_task_enterprise_id"), "task", ["enterprise_id"], unique=False)
    op.create_index("ix_task_plan_rule_status", "task", ["plan_id", "rule_index", "status"], unique=False)
    op.create_table(
        "task_inspector",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_inspector_task_id_task")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_task_inspector_user_id_app_user")),
        sa.PrimaryKeyConstraint("task_id", "user_id", name=op.f("pk_task_inspector")),
    )
    op.create_index(op.f("ix_task_inspector_user_id"), "task_inspector", ["user_id"], unique=False)
    for table in APPEND_ONLY:
        forbid_changes(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        allow_changes(table)
    op.drop_index(op.f("ix_task_inspector_user_id"), table_name="task_inspector")
    op.drop_table("task_inspector")
    op.drop_index("ix_task_plan_rule_status", table_name="task")
    op.drop_index(op.f("ix_task_enterprise_id"), table_name="task")
    op.drop_index(op.f("ix_task_draw_id"), table_name="task")
    op.drop_index("ix_task_created_at_id", table_name="task")
    op.drop_table("task")
    op.drop_index(op.f("ix_draw_plan_id"), table_name="draw")
    op.drop_index("ix_draw_created_at_id", table_name="draw")
    op.drop_table("draw")
    op.drop_index(op.f("ix_plan_status"), table_name="plan")
    op.drop_index("ix_plan_created_at_id", table_name="plan")
    op.drop_index(op.f("ix_plan_agency_id"), table_name="plan")
    op.drop_table("plan")
    op.drop_index(op.f("ix_inspector_conflict_user_id"), table_name="inspector_conflict")
    op.drop_index(op.f("ix_inspector_conflict_enterprise_id"), table_name="inspector_conflict")
    op.drop_table("inspector_conflict")
    op.drop_index("ix_enterprise_classification_in_force", table_name="enterprise_classification")
    op.drop_table("enterprise_classification")
