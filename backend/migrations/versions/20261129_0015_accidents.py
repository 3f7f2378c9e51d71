"""accidents and the look-back of their rectification measures (安全生产法 第八十六条第三款)

Adds accidents (with the approved investigation report and the evaluation on the row), their timeline, the measures
the report orders, the enterprise's progress on them, the evaluation's findings (all append-only: a later finding is
a new row), the issued 评估报告 with its PDF, and `accident_id` on evidence (an owner) and on hazards (the accident
whose evaluation opened them).

Other branches add 0012-0014: planning's 0013 comes before this revision; 0012 (documents of inspections and hazard
reviews) was re-chained after it.

Revision ID: 0015
Revises: 0011
Create Date: 2026-11-29 18:32:20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("accident_event", "accident_measure", "accident_progress", "accident_finding", "accident_report")


def upgrade() -> None:
    op.create_table(
        "accident",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("deaths", sa.Integer(), nullable=False),
        sa.Column("injuries", sa.Integer(), nullable=False),
        sa.Column("direct_loss", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("approved_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("document_no", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("report_evidence_ids", sa.JSON(), nullable=False),
        sa.Column("evaluation_due", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluation_window_days", sa.Integer(), nullable=True),
        sa.Column("evaluation_started_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluation_finish_by", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("accountability", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_accident_agency_id_agency")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_accident_enterprise_id_enterprise")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_accident_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accident")),
    )
    with op.batch_alter_table("accident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accident_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index("ix_accident_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_accident_enterprise_created_at_id", ["enterprise_id", "created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_evaluated_at"), ["evaluated_at"], unique=False)
        batch_op.create_index("ix_accident_evaluation_due_id", ["evaluation_due", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_status"), ["status"], unique=False)

    op.create_table(
        "accident_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("accident_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["accident_id"], ["accident.id"], name=op.f("fk_accident_event_accident_id_accident")),
        sa.ForeignKeyConstraint(["actor_id"], ["app_user.id"], name=op.f("fk_accident_event_actor_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accident_event")),
    )
    with op.batch_alter_table("accident_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accident_event_accident_id"), ["accident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_event_client_id"), ["client_id"], unique=True)

    op.create_table(
        "accident_measure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accident_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("responsible", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("due_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["accident_id"], ["accident.id"], name=op.f("fk_accident_measure_accident_id_accident")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accident_measure")),
        sa.UniqueConstraint("accident_id", "seq", name=op.f("uq_accident_measure_accident_id_seq")),
    )
    with op.batch_alter_table("accident_measure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accident_measure_accident_id"), ["accident_id"], unique=False)

    op.create_table(
        "accident_report",
        sa.Column("accident_id", sa.Uuid(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column("issued_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["accident_id"], ["accident.id"], name=op.f("fk_accident_report_accident_id_accident")),
        sa.ForeignKeyConstraint(["issued_by"], ["app_user.id"], name=op.f("fk_accident_report_issued_by_app_user")),
        sa.PrimaryKeyConstraint("accident_id", name=op.f("pk_accident_report")),
    )
    op.create_table(
        "accident_finding",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accident_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("evidence_ids", sa.JSON(), nullable=False),
        sa.Column("hazard_id", sa.Uuid(), nullable=True),
        sa.Column("evaluated_by", sa.Uuid(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["accident_id"], ["accident.id"], name=op.f("fk_accident_finding_accident_id_accident")),
        sa.ForeignKeyConstraint(["evaluated_by"], ["app_user.id"], name=op.f("fk_accident_finding_evaluated_by_app_user")),
        sa.ForeignKeyConstraint(["hazard_id"], ["hazard.id"], name=op.f("fk_accident_finding_hazard_id_hazard")),
        sa.ForeignKeyConstraint(["measure_id"], ["accident_measure.id"], name=op.f("fk_accident_finding_measure_id_accident_measure")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accident_finding")),
    )
    with op.batch_alter_table("accident_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accident_finding_accident_id"), ["accident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_finding_measure_id"), ["measure_id"], unique=False)

    op.create_table(
        "accident_progress",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("accident_id", sa.Uuid(), nullable=False),
        sa.Column("measure_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence_ids", sa.JSON(), nullable=False),
        sa.Column("by_enterprise", sa.Boolean(), nullable=False),
        sa.Column("submitted_by", sa.Uuid(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["accident_id"], ["accident.id"], name=op.f("fk_accident_progress_accident_id_accident")),
        sa.ForeignKeyConstraint(["measure_id"], ["accident_measure.id"], name=op.f("fk_accident_progress_measure_id_accident_measure")),
        sa.ForeignKeyConstraint(["submitted_by"], ["app_user.id"], name=op.f("fk_accident_progress_submitted_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accident_progress")),
    )
    with op.batch_alter_table("accident_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accident_progress_accident_id"), ["accident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accident_progress_measure_id"), ["measure_id"], unique=False)

    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accident_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_evidence_accident_id"), ["accident_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_evidence_accident_id_accident"), "accident", ["accident_id"], ["id"])

    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accident_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_hazard_accident_id"), ["accident_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_hazard_accident_id_accident"), "accident", ["accident_id"], ["id"])

    for table in APPEND_ONLY:
        forbid_changes(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        allow_changes(table)
    with op.batch_alter_table("hazard", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_hazard_accident_id_accident"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_hazard_accident_id"))
        batch_op.drop_column("accident_id")

    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_evidence_accident_id_accident"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_evidence_accident_id"))
        batch_op.drop_column("accident_id")

    with op.batch_alter_table("accident_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accident_progress_measure_id"))
        batch_op.drop_index(batch_op.f("ix_accident_progress_accident_id"))

    op.drop_table("accident_progress")
    with op.batch_alter_table("accident_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accident_finding_measure_id"))
        batch_op.drop_index(batch_op.f("ix_accident_finding_accident_id"))

    op.drop_table("accident_finding")
    op.drop_table("accident_report")
    with op.batch_alter_table("accident_measure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accident_measure_accident_id"))

    op.drop_table("accident_measure")
    with op.batch_alter_table("accident_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accident_event_client_id"))
        batch_op.drop_index(batch_op.f("ix_accident_event_accident_id"))

    op.drop_table("accident_event")
    with op.batch_alter_table("accident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accident_status"))
        batch_op.drop_index(batch_op.f("ix_accident_level"))
        batch_op.drop_index("ix_accident_evaluation_due_id")
        batch_op.drop_index(batch_op.f("ix_accident_evaluated_at"))
        batch_op.drop_index("ix_accident_enterprise_created_at_id")
        batch_op.drop_index("ix_accident_created_at_id")
        batch_op.drop_index(batch_op.f("ix_accident_agency_id"))

    op.drop_table("accident")
