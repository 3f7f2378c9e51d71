"""Registering webhooks and reading (and replaying) their deliveries. Admins only; every change is audited."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit
from backend.audit import Actor
from backend.clock import now
from backend.errors import ErrorCode, NotFound
from backend.integration.models import Webhook, WebhookDelivery
from backend.integration.outbox import EMITTED_KEY
from backend.integration.receivers import SecretBox, check_url
from backend.integration.schemas import DeliveryStatus, WebhookDeliveryOut, WebhookIn, WebhookOut
from backend.pagination import Page, keyset, page_of
from backend.settings import Settings


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(webhook, from_attributes=True)


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    out = WebhookDeliveryOut.model_validate(delivery, from_attributes=True)
    return out if delivery.status == "pending" else out.model_copy(update={"next_attempt_at": None})


class WebhookService:
    def __init__(self, session: AsyncSession, actor: Actor, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.settings = settings

    async def create(self, data: WebhookIn) -> Webhook:
        url = await check_url(data.url, self.settings)
        webhook = Webhook(
            url=url,
            events=[str(e) for e in data.events],
            secret_encrypted=SecretBox(self.settings).seal(data.secret),
            created_by=self.actor.user_id,
            created_at=now(),
        )
        self.session.add(webhook)
        audit.record(self.session, self.actor, "webhook.created", "webhook", webhook.id, {"url": url, "events": webhook.events})
        return webhook

    async def list(self, cursor: str | None, limit: int) -> Page[WebhookOut]:
        rows = list((await self.session.execute(keyset(select(Webhook), Webhook.created_at, Webhook.id, cursor, limit))).scalars())
        return page_of(rows, limit, webhook_out)

    async def get(self, webhook_id: uuid.UUID, *, lock: bool = False) -> Webhook:
        query = select(Webhook).where(col(Webhook.id) == webhook_id)
        webhook = (await self.session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
        if webhook is None:
            raise NotFound(f"webhook {webhook_id} not found", code=ErrorCode.WEBHOOK_NOT_FOUND)
        return webhook

    async def deactivate(self, webhook_id: uuid.UUID) -> Webhook:
        """Stop sending to a receiver; its history stays readable. Pending deliveries are left as they are."""
        webhook = await self.get(webhook_id, lock=True)
        if webhook.active:
            webhook.active = False
            audit.record(self.session, self.actor, "webhook.deactivated", "webhook", webhook.id, {"url": webhook.url})
        return webhook

    async def deliveries(
        self, webhook_id: uuid.UUID, status: DeliveryStatus | None, cursor: str | None, limit: int
    ) -> Page[WebhookDeliveryOut]:
        await self.get(webhook_id)
        query = select(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook_id)
        if status:
            query = query.where(col(WebhookDelivery.status) == status)
        rows = list((await self.session.execute(keyset(query, WebhookDelivery.created_at, WebhookDelivery.id, cursor, limit))).scalars())
        return page_of(rows, limit, delivery_out)

    async def redeliver(self, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
        """Send the event again now, with a fresh retry window: for a failed delivery, or one the receiver lost."""
        await self.get(webhook_id)
        query = (
            select(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.webhook_id) == webhook_id)
            .with_for_update()
        )
        delivery = (await self.session.execute(query)).scalar_one_or_none()
        if delivery is None:
            raise NotFound(f"delivery {delivery_id} of webhook {webhook_id} not found", code=ErrorCode.DELIVERY_NOT_FOUND)
        at = now()
        before = delivery.status
        delivery.status, delivery.claim, delivery.next_attempt_at, delivery.window_started_at = "pending", None, at, at
        self.session.info[EMITTED_KEY] = True  # wake this process's dispatcher at commit
        audit.record(
            self.session,
            self.actor,
            "webhook_delivery.redeliver",
            "webhook_delivery",
            delivery.id,
            {"from": before, "event_id": delivery.event_id},
        )
        return delivery
