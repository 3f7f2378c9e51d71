"""the event outbox, webhooks and their deliveries (issue 15)

Revision ID: 0014
Revises: 0015
Create Date: 2026-11-29 18:34:38

Written beside 0013 and 0015 and chained after them when the branches were merged; it only creates tables of its
own, so its place in the chain changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import backend.db

revision: str = "0014"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("aspect", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("due_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fanned_out_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
        sa.UniqueConstraint("event", "subject_id", "aspect", "due_at", name="uq_event_outbox_once"),
    )
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_outbox_pending",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("fanned_out_at IS NULL"),
            sqlite_where=sa.text("fanned_out_at IS NULL"),
        )

    op.create_table(
        "webhook",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["app_user.id"], name=op.f("fk_webhook_created_by_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook")),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim", sa.Uuid(), nullable=True),
        sa.Column("window_started_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", backend.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event_outbox.id"], name=op.f("fk_webhook_delivery_event_id_event_outbox")),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhook.id"], name=op.f("fk_webhook_delivery_webhook_id_webhook")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery_webhook_event"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_delivery_due",
            ["webhook_id", "next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_webhook_delivery_webhook_created", ["webhook_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_delivery_webhook_created")
        batch_op.drop_index(
            "ix_webhook_delivery_due", postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'")
        )

    op.drop_table("webhook_delivery")
    op.drop_table("webhook")
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_event_outbox_pending", postgresql_where=sa.text("fanned_out_at IS NULL"), sqlite_where=sa.text("fanned_out_at IS NULL")
        )

    op.drop_table("event_outbox")
