"""HTTP for checklists: lists by topic and date, and whole checklists with ETag so phones download each once."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.checklists.schemas import ChecklistOut, ChecklistSummary
from backend.checklists.service import ChecklistService
from backend.clock import local_today
from backend.pagination import Page
from backend.vocabulary import Topic


def provide_checklist_service(db_session: NamedDependency[AsyncSession]) -> ChecklistService:
    return ChecklistService(db_session)


DateParam = Annotated[
    date | None,
    QueryParameter(name="date", description="the inspection date (default: today in the agency's zone)"),
]


class ChecklistController(Controller):
    path = "/checklists"
    tags = ["checklists"]
    dependencies = {"checklists": Provide(provide_checklist_service, sync_to_thread=False)}

    @get(
        "/",
        summary="Published checklists: by default the version of each standard in force on the date",
        description="The whole selection comes in one page (it is a few dozen at most): `next_cursor` is always null.",
    )
    async def list(
        self,
        checklists: NamedDependency[ChecklistService],
        topic: FromQuery[Topic | None] = None,
        kind: FromQuery[Literal["major", "routine"] | None] = None,
        on: DateParam = None,
        all_versions: FromQuery[bool] = False,
    ) -> Page[ChecklistSummary]:
        return Page[ChecklistSummary](items=await checklists.list(topic, kind, on or local_today(), all_versions), next_cursor=None)

    @get(
        "/{checklist_id:uuid}",
        summary="One checklist version with all its items; send If-None-Match to get 304 when unchanged",
    )
    async def get(
        self,
        request: Request,
        checklist_id: FromPath[uuid.UUID],
        checklists: NamedDependency[ChecklistService],
        on: DateParam = None,
    ) -> Response[ChecklistOut]:
        checklist = await checklists.get(checklist_id, on or local_today())
        body = checklist.model_dump_json().encode("utf-8")
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        # If-None-Match compares weakly (RFC 9110 13.1.2): a proxy that compressed the body may have added W/.
        sent = [tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")]
        # The body is sent as the bytes it was hashed from (so the ETag matches it exactly); the annotation
        # `Response[ChecklistOut]` is what the OpenAPI document describes.
        if etag in sent or "*" in sent:
            return Response(content=b"", status_code=304, headers=headers)  # type: ignore[arg-type]
        return Response(content=body, media_type="application/json", headers=headers)  # type: ignore[arg-type]
