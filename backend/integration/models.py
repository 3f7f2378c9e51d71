"""The outbox of events, the webhooks that receive them and one delivery row per (webhook, event).

The outbox is the truth: an event row is written in the same transaction as the change it reports (or, for the
scheduler's time-based events, once per (event, subject, aspect, due instant), enforced by a unique index), and a
delivery is done only when its receiver answered 2xx or its retry window ran out. A process that dies mid-delivery
leaves its claimed rows to come due again when their lease ends."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk


class EventOutbox(SQLModel, table=True):
    __tablename__ = "event_outbox"
    __table_args__ = (
        # the scheduler's exactly-once key; NULL due_at (transactional events) never collides
        UniqueConstraint("event", "subject_id", "aspect", "due_at", name="uq_event_outbox_once"),
        # what the dispatcher has still to fan out to the webhooks: a small partial index
        Index(
            "ix_event_outbox_pending",
            "created_at",
            postgresql_where=text("fanned_out_at IS NULL"),
            sqlite_where=text("fanned_out_at IS NULL"),
        ),
    )

    id: uuid.UUID = uuid_pk()  # the event's stable id (X-Event-Id): receivers de-duplicate on it
    event: str = Field(max_length=40)
    subject_id: uuid.UUID | None = Field(default=None)  # the hazard, case, task ... it is about
    aspect: str = Field(default="", max_length=40)  # which of the subject's deadlines (case.deadline_near), else ''
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the instant a time-based event is about
    occurred_at: datetime = created_at_field()
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = created_at_field()
    fanned_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Webhook(SQLModel, table=True):
    __tablename__ = "webhook"

    id: uuid.UUID = uuid_pk()
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))  # Fernet token (backend/integration/secrets.py)
    active: bool = True
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery_webhook_event"),
        # the due deliveries of one webhook, oldest first: what a delivery lane claims
        Index(
            "ix_webhook_delivery_due",
            "webhook_id",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_delivery_webhook_created", "webhook_id", "created_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    webhook_id: uuid.UUID = Field(foreign_key="webhook.id")
    event_id: uuid.UUID = Field(foreign_key="event_outbox.id")
    event: str = Field(max_length=40)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = created_at_field()  # when due; while claimed, when the claim's lease ends
    claim: uuid.UUID | None = Field(default=None)  # the current attempt's token: only its sender records the outcome
    window_started_at: datetime = created_at_field()  # retries go on until this + WEBHOOK_RETRY_WINDOW_SECONDS
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_http_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
