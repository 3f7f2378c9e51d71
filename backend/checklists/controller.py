"""HTTP for checklists: lists by topic and date, and whole checklists with ETag so phones download each once."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.checklists.schemas import ChecklistOut, ChecklistPage, ChecklistPublished
from backend.checklists.service import HOW_TO_LOAD, ChecklistService
from backend.clock import local_today
from backend.errors import ErrorCode, ValidationFailed
from backend.limits import MIB
from backend.vocabulary import Role, Topic


def provide_checklist_service(db_session: NamedDependency[AsyncSession]) -> ChecklistService:
    return ChecklistService(db_session)


DateParam = Annotated[
    date | None,
    QueryParameter(name="date", description="the inspection date (default: today in the agency's zone)"),
]


CHECKLIST_MAX_FILE_BYTES = 2 * MIB  # the largest standard shipped (123 items) is 60 KB


@dataclass
class ChecklistUploadOperation(Operation):
    """Documents the form `POST /checklists` reads: the checklist YAML in `file`."""

    def __post_init__(self) -> None:
        file = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="the checklist YAML (UTF-8), at most 2 MiB")
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT, properties={"file": file}, required=["file"])
                )
            },
        )


class ChecklistController(Controller):
    path = "/checklists"
    tags = ["checklists"]
    dependencies = {"checklists": Provide(provide_checklist_service, sync_to_thread=False)}

    @get(
        "/",
        summary="Published checklists: by default the version of each standard in force on the date",
        description=(
            "Only the version of each standard in force on `date` is offered (`effective_from` ≤ date < `effective_to`; "
            "`effective_to` is exclusive, `last_day_in_force` is the last day; an unknown `effective_from` counts as "
            "in force until `effective_to`). When a standard in force on that date is not loaded, its predecessor is "
            "not offered and `notices` carries `standard_unavailable` — from 2025-11-01 for fire safety, where GB "
            "35181-2025 replaced GB 35181-2017 and its element texts are not loaded; the routine fire list is still "
            f"offered. {HOW_TO_LOAD} The whole selection comes in one page: `next_cursor` is always null."
        ),
    )
    async def list(
        self,
        checklists: NamedDependency[ChecklistService],
        topic: FromQuery[Topic | None] = None,
        kind: FromQuery[Literal["major", "routine"] | None] = None,
        on: DateParam = None,
        all_versions: FromQuery[bool] = False,
    ) -> ChecklistPage:
        return await checklists.list(topic, kind, on or local_today(), all_versions)

    @post(
        "/",
        guards=[requires_role(Role.admin)],
        operation_class=ChecklistUploadOperation,
        request_max_body_size=CHECKLIST_MAX_FILE_BYTES + 64 * 1024,
        summary="Load a standard: publish a checklist YAML as a new immutable version (admin)",
        description=(
            "Multipart with the YAML in `file` (the format of checklists/README.md). Validated like the shipped files: "
            "`422 checklist_invalid` names the `field`, its `line` and every problem in `errors`. New: `201`; the same "
            "content again: `200`; other content under a published code and version: `409 checklist_version_published`. "
            "The version is offered by GET /checklists from its `effective_from` and used by new inspections."
        ),
    )
    async def publish(
        self, request: Request[Any, Any, Any], checklists: NamedDependency[ChecklistService], actor: NamedDependency[Actor]
    ) -> Response[ChecklistPublished]:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ValidationFailed("send multipart/form-data with the YAML in `file`", code=ErrorCode.UNSUPPORTED_MEDIA_TYPE, field="file")
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed("the file part is missing", code=ErrorCode.FILE_REQUIRED, field="file")
        raw = await upload.read(CHECKLIST_MAX_FILE_BYTES + 1)
        if not raw:
            raise ValidationFailed("the file is empty", code=ErrorCode.EMPTY_FILE, field="file")
        published = await checklists.import_upload(raw, (upload.filename or "upload.yaml")[-120:], actor)
        return Response(published, status_code=201 if published.created else 200)

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
