"""HTTP for webhooks (admins) and hazard exports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.integration.schemas import DeliveryStatus, WebhookDeliveryOut, WebhookIn, WebhookOut
from backend.integration.webhooks import WebhookService, delivery_out, webhook_out
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import Role


def provide_webhook_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> WebhookService:
    return WebhookService(db_session, actor, request.app.state.settings)


Limit = Annotated[int, QueryParameter(ge=1, le=200)]


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["integration"]
    guards = [requires_role(Role.admin)]
    dependencies = {"webhooks": Provide(provide_webhook_service, sync_to_thread=False)}

    @post("/", summary="Register a receiver of events; its secret is never shown again")
    async def create(self, data: JSONBody[WebhookIn], webhooks: NamedDependency[WebhookService]) -> Response[WebhookOut]:
        return Response(webhook_out(await webhooks.create(data)), status_code=201)

    @get("/", summary="The registered receivers (without their secrets)")
    async def list(
        self, webhooks: NamedDependency[WebhookService], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[WebhookOut]:
        return await webhooks.list(cursor, limit)

    @delete("/{webhook_id:uuid}", summary="Stop sending to a receiver; its delivery history stays", status_code=204)
    async def deactivate(self, webhook_id: FromPath[uuid.UUID], webhooks: NamedDependency[WebhookService]) -> None:
        await webhooks.deactivate(webhook_id)

    @get("/{webhook_id:uuid}/deliveries", summary="A receiver's deliveries, newest first; `status=failed` lists the failed ones")
    async def deliveries(
        self,
        webhook_id: FromPath[uuid.UUID],
        webhooks: NamedDependency[WebhookService],
        status: FromQuery[DeliveryStatus | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[WebhookDeliveryOut]:
        return await webhooks.deliveries(webhook_id, status, cursor, limit)

    @post(
        "/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        status_code=202,
        summary="Send a delivery's event again now, with a new retry window",
    )
    async def redeliver(
        self, webhook_id: FromPath[uuid.UUID], delivery_id: FromPath[uuid.UUID], webhooks: NamedDependency[WebhookService]
    ) -> WebhookDeliveryOut:
        return delivery_out(await webhooks.redeliver(webhook_id, delivery_id))
