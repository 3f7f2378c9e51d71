"""checklists in force by date, comprehensive rules, links from routine items to standards, withdrawn versions

- `checklist_item.major_standard_items`: the standard items under which a routine item's facts are a major hazard.
- `checklist_withdrawal`: a published version taken out of use (append-only; the version row is untouched). The
  coal standard of 部令第4号 was shipped as version '2021' and is now version '2020' (its promulgation year, as the
  issue and the other versions are named); a database that published '2021' keeps that row for the inspections
  that used it, and it is withdrawn here in favour of '2020', which start-up publishes.
- `inspection.inspection_date` (the day inspected, which decides the versions that apply) and
  `inspection.site_types` (which comprehensive rules apply, e.g. 人员密集场所).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import backend.db
from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# backend.checklists.service.CHECKLIST_NAMESPACE (copied: a migration does not import application code)
_NAMESPACE = uuid.UUID("6f1c1d2e-8b4e-4a63-9d7e-2f1a0c5b7e10")


def upgrade() -> None:
    # ADD COLUMN keeps the append-only triggers on both databases (no table rebuild).
    op.add_column("checklist_item", sa.Column("major_standard_items", sa.JSON(), server_default="[]", nullable=False))
    op.add_column("inspection", sa.Column("inspection_date", sa.Date(), nullable=True))
    op.add_column("inspection", sa.Column("site_types", sa.JSON(), server_default="[]", nullable=False))
    withdrawal = op.create_table(
        "checklist_withdrawal",
        sa.Column("checklist_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("replaced_by", sa.Uuid(), nullable=True),
        sa.Column("withdrawn_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["checklist_id"], ["checklist.id"], name=op.f("fk_checklist_withdrawal_checklist_id_checklist")),
        sa.PrimaryKeyConstraint("checklist_id", name=op.f("pk_checklist_withdrawal")),
    )
    forbid_changes("checklist_withdrawal")
    checklist = sa.table("checklist", sa.column("id", sa.Uuid()), sa.column("code", sa.String()), sa.column("version", sa.String()))
    old = (
        op.get_bind()
        .execute(sa.select(checklist.c.id).where(checklist.c.code == "coal-mine-major", checklist.c.version == "2021"))
        .scalar_one_or_none()
    )
    if old is not None:
        op.bulk_insert(
            withdrawal,
            [
                {
                    "checklist_id": old,
                    "reason": "部令第4号 is version 2020 (promulgated 2020, in force 2021-01-01 to 2026-06-30); "
                    "use coal-mine-major@2020, which holds all 81 items",
                    "replaced_by": uuid.uuid5(_NAMESPACE, "coal-mine-major@2020"),
                    "withdrawn_at": datetime.now(UTC),
                }
            ],
        )


def downgrade() -> None:
    allow_changes("checklist_withdrawal")
    op.drop_table("checklist_withdrawal")
    op.drop_column("inspection", "site_types")
    op.drop_column("inspection", "inspection_date")
    op.drop_column("checklist_item", "major_standard_items")
