"""What crosses the wire for webhooks and their deliveries. A webhook's secret goes in once and never comes out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from backend.integration.outbox import EventName
from backend.wire import Input, Output

DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookIn(Input):
    url: str = Field(max_length=2000, description="http(s) address of the receiver; link-local and metadata addresses are refused")
    secret: str = Field(
        min_length=16, max_length=256, description="shared secret for X-Signature (HMAC-SHA256); stored encrypted, never shown again"
    )
    events: list[EventName] = Field(min_length=1, description="the events this receiver gets")

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[EventName]) -> list[EventName]:
        return list(dict.fromkeys(value))


class WebhookOut(Output):
    id: uuid.UUID
    url: str
    events: list[str]
    active: bool
    created_at: datetime


class WebhookDeliveryOut(Output):
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID = Field(description="the event's stable id, sent as X-Event-Id")
    event: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="when the next attempt is due (pending only)")
    last_attempt_at: datetime | None
    last_http_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
