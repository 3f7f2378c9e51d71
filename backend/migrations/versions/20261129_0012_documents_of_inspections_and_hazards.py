"""documents of routine inspections and of hazard reviews, and their deliveries (送达)

An issued document now belongs to a case, an inspection (现场检查记录, 责令限期整改指令书: one of each per
inspection) or a hazard's review (整改复查意见书); `case_id` becomes optional. `document_delivery` records each
delivery of an issued document, append-only like the documents.

Written after 0009 on its own branch and re-chained after 0014 when merged: it applies on top of 0011's penalty
procedure, whose key of a case's documents, (case_id, type, target, edition), it keeps; a document of an inspection
or of a review is keyed by (inspection_id, type) or (hazard_event_id, type) beside it.

Revision ID: 0012
Revises: 0014
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0012"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite, batch mode rebuilds the table, which drops its triggers: lift and restore the append-only guard.
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document") as batch:
        batch.alter_column("case_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("inspection_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("hazard_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("hazard_event_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(op.f("fk_issued_document_inspection_id_inspection"), "inspection", ["inspection_id"], ["id"])
        batch.create_foreign_key(op.f("fk_issued_document_hazard_id_hazard"), "hazard", ["hazard_id"], ["id"])
        batch.create_foreign_key(op.f("fk_issued_document_hazard_event_id_hazard_event"), "hazard_event", ["hazard_event_id"], ["id"])
        batch.create_unique_constraint(op.f("uq_issued_document_inspection_id_type"), ["inspection_id", "type"])
        batch.create_unique_constraint(op.f("uq_issued_document_hazard_event_id_type"), ["hazard_event_id", "type"])
        batch.create_index(op.f("ix_issued_document_inspection_id"), ["inspection_id"], unique=False)
        batch.create_index(op.f("ix_issued_document_hazard_id"), ["hazard_id"], unique=False)
    forbid_changes("issued_document")

    op.create_table(
        "document_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("inspection_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("delivered_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("client_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["issued_document.id"], name=op.f("fk_document_delivery_document_id_issued_document")),
        sa.ForeignKeyConstraint(["inspection_id"], ["inspection.id"], name=op.f("fk_document_delivery_inspection_id_inspection")),
        sa.ForeignKeyConstraint(["case_id"], ["enforcement_case.id"], name=op.f("fk_document_delivery_case_id_enforcement_case")),
        sa.ForeignKeyConstraint(["recorded_by"], ["app_user.id"], name=op.f("fk_document_delivery_recorded_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_delivery")),
    )
    with op.batch_alter_table("document_delivery") as batch:
        batch.create_index(op.f("ix_document_delivery_document_id"), ["document_id"], unique=False)
        batch.create_index(op.f("ix_document_delivery_inspection_id"), ["inspection_id"], unique=False)
        batch.create_index(op.f("ix_document_delivery_case_id"), ["case_id"], unique=False)
    forbid_changes("document_delivery")


def downgrade() -> None:
    # Documents of inspections and hazards have no case to belong to: a downgrade would lose them, so it refuses.
    if op.get_bind().execute(sa.text("SELECT count(*) FROM issued_document WHERE case_id IS NULL")).scalar():
        raise RuntimeError("documents of inspections or hazard reviews exist; they cannot be kept without a case")
    allow_changes("document_delivery")
    op.drop_table("document_delivery")
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document") as batch:
        batch.drop_index(op.f("ix_issued_document_hazard_id"))
        batch.drop_index(op.f("ix_issued_document_inspection_id"))
        batch.drop_constraint(op.f("uq_issued_document_hazard_event_id_type"), type_="unique")
        batch.drop_constraint(op.f("uq_issued_document_inspection_id_type"), type_="unique")
        batch.drop_constraint(op.f("fk_issued_document_hazard_event_id_hazard_event"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_issued_document_hazard_id_hazard"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_issued_document_inspection_id_inspection"), type_="foreignkey")
        batch.drop_column("hazard_event_id")
        batch.drop_column("hazard_id")
        batch.drop_column("inspection_id")
        batch.alter_column("case_id", existing_type=sa.Uuid(), nullable=False)
    forbid_changes("issued_document")
