"""enforcement cases

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:45:19.537430
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_counter",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_document_counter_agency_id_agency")),
        sa.PrimaryKeyConstraint("agency_id", "year", "type", name=op.f("pk_document_counter")),
    )
    op.create_table(
        "enforcement_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("enterprise_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("opened_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decide_by", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("decided_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"], name=op.f("fk_enforcement_case_agency_id_agency")),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_enforcement_case_created_by_app_user")),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], name=op.f("fk_enforcement_case_enterprise_id_enterprise")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], name=op.f("fk_enforcement_case_inspection_id_inspection")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enforcement_case")),
    )
    with op.batch_alter_table("enforcement_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enforcement_case_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enforcement_case_decided_at"), ["decided_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_enforcement_case_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enforcement_case_status"), ["status"], unique=False)

    op.create_table(
        "case_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("major_reasons", sa.JSON(), nullable=False),
        sa.Column("drafted_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_decision_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["drafted_by"], ["app_user.id"], name=op.f("fk_case_decision_drafted_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_decision")),
    )
    with op.batch_alter_table("case_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_decision_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("from_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("to_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["app_user.id"], name=op.f("fk_case_event_actor_id_app_user")),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_event_case_id_enforcement_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_event_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_handler",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("certificate_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_handler_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_case_handler_user_id_app_user")),
        sa.PrimaryKeyConstraint("case_id", "user_id", name=op.f("pk_case_handler")),
    )
    op.create_table(
        "case_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("occurred_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("location", sa.JSON(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_record_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_case_record_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_record")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_record_case_id_seq")),
    )
    with op.batch_alter_table("case_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_record_case_id"), ["case_id"], unique=False)

    op.create_table(
        "issued_document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("object_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column("issued_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_issued_document_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["issued_by"], ["app_user.id"], name=op.f("fk_issued_document_issued_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_document")),
        sa.UniqueConstraint("case_id", "type", name=op.f("uq_issued_document_case_id_type")),
    )
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_document_case_id"), ["case_id"], unique=False)

    op.create_table(
        "legal_review",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_legal_review_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["decision_id"], ["case_decision.id"], name=op.f("fk_legal_review_decision_id_case_decision")),
        sa.ForeignKeyConstraint(["reviewer_id"], ["app_user.id"], name=op.f("fk_legal_review_reviewer_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_review")),
    )
    with op.batch_alter_table("legal_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_review_case_id"), ["case_id"], unique=False)

    # The record, the history, drafts, reviews and issued documents are never edited.
    forbid_changes("case_record")
    forbid_changes("case_event")
    forbid_changes("case_decision")
    forbid_changes("legal_review")
    forbid_changes("issued_document")


def downgrade() -> None:
    allow_changes("case_record")
    allow_changes("case_event")
    allow_changes("case_decision")
    allow_changes("legal_review")
    allow_changes("issued_document")
    with op.batch_alter_table("legal_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_review_case_id"))

    op.drop_table("legal_review")
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_document_case_id"))

    op.drop_table("issued_document")
    with op.batch_alter_table("case_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_record_case_id"))

    op.drop_table("case_record")
    op.drop_table("case_handler")
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_event_case_id"))

    op.drop_table("case_event")
    with op.batch_alter_table("case_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_decision_case_id"))

    op.drop_table("case_decision")
    with op.batch_alter_table("enforcement_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enforcement_case_status"))
        batch_op.drop_index(batch_op.f("ix_enforcement_case_enterprise_id"))
        batch_op.drop_index(batch_op.f("ix_enforcement_case_decided_at"))
        batch_op.drop_index(batch_op.f("ix_enforcement_case_agency_id"))

    op.drop_table("enforcement_case")
    op.drop_table("document_counter")
