"""HTTP for hazards."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.hazards.schemas import HazardDetail, HazardIn, HazardOut, Level
from backend.hazards.service import HazardService, hazard_detail
from backend.pagination import DEFAULT_LIMIT, Page


def provide_hazard_service(db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> HazardService:
    return HazardService(db_session, actor)


class HazardController(Controller):
    path = "/hazards"
    tags = ["hazards"]
    dependencies = {"hazards": Provide(provide_hazard_service, sync_to_thread=False)}

    @post(
        "/",
        guards=[requires_role("inspector", "enterprise")],
        summary="Report a hazard: an inspector's starts reported, an enterprise's self-report starts rectifying",
    )
    async def create(self, data: JSONBody[HazardIn], hazards: NamedDependency[HazardService]) -> Response[HazardDetail]:
        hazard, created = await hazards.create(data)
        return Response(hazard_detail(await hazards.get(hazard.id)), status_code=201 if created else 200)

    @get("/", summary="Hazards in the caller's scope")
    async def list(
        self,
        hazards: NamedDependency[HazardService],
        enterprise_id: FromQuery[uuid.UUID | None] = None,
        status: FromQuery[str | None] = None,
        level: FromQuery[Level | None] = None,
        topic: FromQuery[str | None] = None,
        overdue: FromQuery[bool | None] = None,
        cursor: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = DEFAULT_LIMIT,
    ) -> Page[HazardOut]:
        return await hazards.list(
            enterprise_id=enterprise_id, status=status, level=level, topic=topic, overdue=overdue, cursor=cursor, limit=limit
        )

    @get("/{hazard_id:uuid}", summary="One hazard with its timeline (404 outside the caller's scope)")
    async def get(self, hazard_id: FromPath[uuid.UUID], hazards: NamedDependency[HazardService]) -> HazardDetail:
        return hazard_detail(await hazards.get(hazard_id))
