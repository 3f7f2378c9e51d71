"""the penalty procedure to the end: 告知, 陈述申辩 and 复核, 听证, 集体讨论, leader approval, 送达, payments, 结案

Adds the procedure's tables (statements and replies, hearings, collective discussions, approvals, deliveries and
payments: all append-only but the hearing, whose record is added when it is held), the case's deadline columns with
one partial index per deadline for the overdue list, and a target and an edition to issued documents (one
行政处罚决定书 per target; a notice issued again after a new draft is a new edition).

Another branch may add 0010; merging re-chains this revision after it.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-29 18:07:37
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("case_statement", "case_statement_reply", "case_discussion", "case_approval", "case_delivery", "case_payment")
CASE_INSTANTS = (
    "notified_at",
    "statement_due",
    "statement_met_at",
    "hearing_request_due",
    "hearing_request_met_at",
    "delivery_due",
    "delivered_at",
    "payment_due",
    "executed_at",
    "closed_at",
)
# step -> (due column, met column), as backend/enforcement/models.py DEADLINE_COLUMNS
DEADLINES = {
    "decision": ("decide_by", "decided_at"),
    "statement": ("statement_due", "statement_met_at"),
    "hearing_request": ("hearing_request_due", "hearing_request_met_at"),
    "delivery": ("delivery_due", "delivered_at"),
    "payment": ("payment_due", "executed_at"),
}


def upgrade() -> None:

    op.create_table(
        "case_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("document_type", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("document_number", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("delivered_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("payment_due", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_delivery_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_case_delivery_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_delivery")),
    )
    with op.batch_alter_table("case_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_delivery_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_hearing",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=False),
        sa.Column("clerk_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("held_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attendees", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_hearing_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["clerk_id"], ["app_user.id"], name=op.f("fk_case_hearing_clerk_id_app_user")),
        sa.ForeignKeyConstraint(["host_id"], ["app_user.id"], name=op.f("fk_case_hearing_host_id_app_user")),
        sa.ForeignKeyConstraint(["scheduled_by"], ["app_user.id"], name=op.f("fk_case_hearing_scheduled_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_hearing")),
    )
    with op.batch_alter_table("case_hearing", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_hearing_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_payment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("receipt_no", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_payment_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_case_payment_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_payment")),
    )
    with op.batch_alter_table("case_payment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_payment_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_statement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("received_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("waived", sa.Boolean(), nullable=False),
        sa.Column("by_party", sa.Boolean(), nullable=False),
        sa.Column("submitted_by", sa.Uuid(), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_statement_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["submitted_by"], ["app_user.id"], name=op.f("fk_case_statement_submitted_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_statement")),
    )
    with op.batch_alter_table("case_statement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_statement_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_approval",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("leader_id", sa.Uuid(), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_approval_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["decision_id"], ["case_decision.id"], name=op.f("fk_case_approval_decision_id_case_decision")),
        sa.ForeignKeyConstraint(["leader_id"], ["app_user.id"], name=op.f("fk_case_approval_leader_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_approval")),
    )
    with op.batch_alter_table("case_approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_approval_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_discussion",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("held_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_discussion_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["decision_id"], ["case_decision.id"], name=op.f("fk_case_discussion_decision_id_case_decision")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_case_discussion_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_discussion")),
    )
    with op.batch_alter_table("case_discussion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_discussion_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_statement_reply",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("statement_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("adopted", sa.Boolean(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("replied_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_case_statement_reply_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["replied_by"], ["app_user.id"], name=op.f("fk_case_statement_reply_replied_by_app_user")),
        sa.ForeignKeyConstraint(["statement_id"], ["case_statement.id"], name=op.f("fk_case_statement_reply_statement_id_case_statement")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_statement_reply")),
        sa.UniqueConstraint("statement_id", name=op.f("uq_case_statement_reply_statement_id")),
    )
    with op.batch_alter_table("case_statement_reply", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_statement_reply_case_id"), ["case_id"], unique=False)

    for table in APPEND_ONLY:
        forbid_changes(table)

    # plain ADD COLUMN (no table rebuild on SQLite: other tables refer to enforcement_case)
    for column in CASE_INSTANTS:
        op.add_column("enforcement_case", sa.Column(column, backend.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("enforcement_case", sa.Column("hearing_right", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("enforcement_case", sa.Column("court_enforcement", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_enforcement_case_created_at_id", "enforcement_case", ["created_at", "id"], unique=False)
    for step, (due, met) in DEADLINES.items():
        where = sa.text(f"{met} IS NULL AND {due} IS NOT NULL")
        op.create_index(
            f"ix_enforcement_case_open_{step}",
            "enforcement_case",
            ["created_at", "id"],
            unique=False,
            postgresql_where=where,
            sqlite_where=where,
        )

    # On SQLite, batch mode rebuilds the table, which drops its triggers: lift and restore the append-only guard.
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("edition", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint(batch_op.f("uq_issued_document_case_id_type"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_issued_document_case_id_type_target_edition"), ["case_id", "type", "target", "edition"]
        )
    forbid_changes("issued_document")


def downgrade() -> None:
    # Several decisions or editions of one document cannot go back under the old (case_id, type) key.
    extra = "SELECT count(*) FROM issued_document WHERE target <> '' OR edition > 1"
    if op.get_bind().execute(sa.text(extra)).scalar():
        raise RuntimeError("documents per target or re-issued editions exist; they do not fit the schema before 0011")
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_issued_document_case_id_type_target_edition"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_issued_document_case_id_type"), ["case_id", "type"])
        batch_op.drop_column("edition")
        batch_op.drop_column("target")
    forbid_changes("issued_document")

    for step in DEADLINES:
        op.drop_index(f"ix_enforcement_case_open_{step}", table_name="enforcement_case")
    op.drop_index("ix_enforcement_case_created_at_id", table_name="enforcement_case")
    with op.batch_alter_table("enforcement_case", schema=None) as batch_op:
        for column in (*CASE_INSTANTS, "hearing_right", "court_enforcement"):
            batch_op.drop_column(column)

    for table in APPEND_ONLY:
        allow_changes(table)
    with op.batch_alter_table("case_statement_reply", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_statement_reply_case_id"))

    op.drop_table("case_statement_reply")
    with op.batch_alter_table("case_discussion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_discussion_case_id"))

    op.drop_table("case_discussion")
    with op.batch_alter_table("case_approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_approval_case_id"))

    op.drop_table("case_approval")
    with op.batch_alter_table("case_statement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_statement_case_id"))

    op.drop_table("case_statement")
    with op.batch_alter_table("case_payment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_payment_case_id"))

    op.drop_table("case_payment")
    with op.batch_alter_table("case_hearing", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_hearing_case_id"))

    op.drop_table("case_hearing")
    with op.batch_alter_table("case_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_delivery_case_id"))

    op.drop_table("case_delivery")
