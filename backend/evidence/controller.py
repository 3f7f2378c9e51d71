"""HTTP for evidence: a streamed multipart upload, presigned uploads for large files, records and content."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, Reference, RequestBody, Schema
from litestar.params import FromPath, JSONBody
from litestar.response import Stream
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.errors import ErrorCode, InvalidInput, ValidationFailed
from backend.evidence.models import Evidence
from backend.evidence.schemas import MEDIA_TYPE, SERVED_MEDIA_TYPES, EvidenceDetail, EvidenceFields, EvidenceOut, UploadIn, UploadOut
from backend.evidence.service import UPLOAD_LINK_TTL, EvidenceService, evidence_out, size_limit
from backend.evidence.upload import receive_multipart
from backend.limits import bounded, refuse_announced


def provide_evidence_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> EvidenceService:
    return EvidenceService(db_session, actor, request.app.state.store, request.app.state.settings)


@dataclass
class MultipartEvidenceOperation(Operation):
    """Documents the form that `POST /evidence` reads from the stream itself."""

    def __post_init__(self) -> None:
        properties: dict[str, Schema | Reference] = {
            "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="the original bytes, unchanged"),
            "kind": Schema(type=OpenAPIType.STRING, enum=["photo", "audio", "video", "document"]),
            "id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID, description="client id; a retry returns the same record"),
            "captured_at": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME, description="RFC 3339 with offset; else EXIF"),
            "lat": Schema(type=OpenAPIType.NUMBER),
            "lng": Schema(type=OpenAPIType.NUMBER),
            "inspection_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
            "hazard_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
            "case_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
            "accident_id": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
        }
        self.request_body = RequestBody(
            required=True,
            description="Send the small fields before the file part; exactly one owner id.",
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT, properties=properties, required=["file", "kind"])
                )
            },
        )


UPLOADERS = [requires_role("admin", "inspector", "enterprise")]


async def receive_evidence(
    request: Request[Any, Any, Any], evidence: EvidenceService, fixed: dict[str, str] | None = None
) -> tuple[Evidence, bool]:
    """Read a multipart evidence upload from the stream and ingest it; `fixed` fields (an owner taken from the path)
    override what the form says."""
    settings = request.app.state.settings
    refuse_announced(request, settings.max_upload_bytes)
    fields, received = await receive_multipart(
        bounded(request.stream(), settings.max_upload_bytes),
        request.headers.get("content-type", ""),
        lambda f: size_limit(settings, f.get("kind")),
    )
    try:
        if received is None:
            raise ValidationFailed("the file part is missing", code=ErrorCode.FILE_REQUIRED, field="file")
        try:
            form = EvidenceFields.model_validate({**{k: v for k, v in fields.items() if v != ""}, **(fixed or {})})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InvalidInput(f"{field or 'form'}: {first['msg'].removeprefix('Value error, ')}", field=field) from exc
        return await evidence.ingest(form, received)
    finally:
        if received is not None:
            received.discard()


class EvidenceController(Controller):
    path = "/evidence"
    tags = ["evidence"]
    dependencies = {"evidence": Provide(provide_evidence_service, sync_to_thread=False)}

    @post(
        "/",
        guards=UPLOADERS,
        operation_class=MultipartEvidenceOperation,
        request_max_body_size=None,  # MAX_UPLOAD_BYTES, which comes from the settings, is enforced below
        summary="Upload evidence (multipart, streamed)",
    )
    async def upload(self, request: Request[Any, Any, Any], evidence: NamedDependency[EvidenceService]) -> Response[EvidenceOut]:
        record, created = await receive_evidence(request, evidence)
        return Response(evidence_out(record), status_code=201 if created else 200)

    @post("/uploads", guards=UPLOADERS, summary="Start a presigned upload for a large file")
    async def start_upload(self, data: JSONBody[UploadIn], evidence: NamedDependency[EvidenceService]) -> Response[UploadOut]:
        record, url, created = await evidence.start_upload(data)
        body = UploadOut(evidence_id=record.id, upload_url=url, expires_in=int(UPLOAD_LINK_TTL.total_seconds()))
        return Response(body, status_code=201 if created else 200)

    @post("/{evidence_id:uuid}/complete", guards=UPLOADERS, status_code=200, summary="Check size and sha256 of what landed")
    async def complete(self, evidence_id: FromPath[uuid.UUID], evidence: NamedDependency[EvidenceService]) -> EvidenceOut:
        return evidence_out(await evidence.complete_upload(evidence_id))

    @get("/{evidence_id:uuid}", summary="The record with short-lived download and thumbnail links")
    async def detail(self, evidence_id: FromPath[uuid.UUID], evidence: NamedDependency[EvidenceService]) -> EvidenceDetail:
        return await evidence.detail(evidence_id)

    @get(
        "/{evidence_id:uuid}/content",
        opt={"media_types": SERVED_MEDIA_TYPES},  # each original in its own media type (image/jpeg, video/mp4, ...)
        summary="The original bytes, in the media type judged from them (or declared for a presigned upload)",
    )
    async def content(self, evidence_id: FromPath[uuid.UUID], evidence: NamedDependency[EvidenceService]) -> Stream:
        record, chunks = await evidence.content(evidence_id)
        return Stream(
            chunks,
            # a content type declared for a presigned upload is checked on the way in; one that predates the check
            # must not reach the header block
            media_type=record.content_type if re.match(MEDIA_TYPE, record.content_type) else "application/octet-stream",
            headers={
                "Content-Length": str(record.size),
                "ETag": f'"{record.sha256}"',
                "X-Content-SHA256": record.sha256 or "",
                "X-Content-Type-Options": "nosniff",  # served as declared, never guessed into something else
            },
        )

    @get("/{evidence_id:uuid}/thumbnail", media_type="image/jpeg", summary="The photo's thumbnail (JPEG, at most 320 px)")
    async def thumbnail(self, evidence_id: FromPath[uuid.UUID], evidence: NamedDependency[EvidenceService]) -> Response[bytes]:
        record, data = await evidence.thumbnail(evidence_id)
        return Response(data, media_type="image/jpeg", headers={"ETag": f'"{record.sha256}-thumbnail"'})
