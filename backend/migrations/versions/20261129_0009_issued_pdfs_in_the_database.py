"""issued PDFs are kept in the database, so issuing a document needs no call to the object store

New issued_document rows carry the PDF's bytes in `pdf` and no `object_key`; rows issued before keep their
`object_key` and are still served from the object store (their bytes are not copied: the store may be down while
migrating, and the rows are append-only).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from backend.migrations.append_only import allow_changes, forbid_changes

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite, batch mode rebuilds the table, which drops its triggers: lift and restore the append-only guard.
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document") as batch:
        batch.add_column(sa.Column("pdf", sa.LargeBinary(), nullable=True))
        batch.alter_column("object_key", existing_type=sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
    forbid_changes("issued_document")


def downgrade() -> None:
    # Documents issued since keep their bytes only here; a downgrade would lose them, so it refuses while any exist.
    if op.get_bind().execute(sa.text("SELECT count(*) FROM issued_document WHERE object_key IS NULL")).scalar():
        raise RuntimeError("issued documents are kept only in the database (pdf); copy them to the store before downgrading")
    allow_changes("issued_document")
    with op.batch_alter_table("issued_document") as batch:
        batch.alter_column("object_key", existing_type=sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False)
        batch.drop_column("pdf")
    forbid_changes("issued_document")
