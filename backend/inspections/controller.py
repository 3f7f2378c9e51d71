"""HTTP for inspections."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.enforcement.register import pdf_response
from backend.inspections.documents import InspectionDocuments
from backend.inspections.schemas import (
    DeliveryIn,
    DeliveryOut,
    InspectionDocumentType,
    InspectionIn,
    InspectionOut,
    NoticeIn,
    ResultsIn,
    SubmitIn,
    SubmitOut,
)
from backend.inspections.service import InspectionService, inspection_out
from backend.limits import RESULTS_MAX_BODY_BYTES
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import InspectionStatus, Role


def provide_inspection_service(db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> InspectionService:
    return InspectionService(db_session, actor)


def provide_inspection_documents(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> InspectionDocuments:
    return InspectionDocuments(db_session, actor, request.app.state.store, request.app.state.settings)


INSPECTOR_ONLY = [requires_role(Role.inspector)]


class InspectionController(Controller):
    path = "/inspections"
    tags = ["inspections"]
    dependencies = {
        "inspections": Provide(provide_inspection_service, sync_to_thread=False),
        "documents": Provide(provide_inspection_documents, sync_to_thread=False),
    }

    @post("/", guards=INSPECTOR_ONLY, summary="Start an inspection (201), or get it back on a retry with the same id (200)")
    async def create(self, data: JSONBody[InspectionIn], inspections: NamedDependency[InspectionService]) -> Response[InspectionOut]:
        inspection, created = await inspections.create(data)
        return Response(inspection_out(inspection), status_code=201 if created else 200)

    @get("/", summary="Inspections in the caller's scope")
    async def list(
        self,
        inspections: NamedDependency[InspectionService],
        enterprise_id: FromQuery[uuid.UUID | None] = None,
        status: FromQuery[InspectionStatus | None] = None,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = DEFAULT_LIMIT,
    ) -> Page[InspectionOut]:
        return await inspections.list(enterprise_id, status, cursor, limit)

    @get(
        "/{inspection_id:uuid}/documents/{doc_type:str}",
        media_type="application/pdf",
        # the first request of someone on the team issues and numbers the document; before that, or before the
        # inspection is submitted (or, for the order, when it found no hazard), 409
        opt={"writes": True, "problem_statuses": [409]},
        summary="现场检查记录 or 责令限期整改指令书 of a submitted inspection, as PDF (issued and numbered once)",
    )
    async def document(
        self,
        inspection_id: FromPath[uuid.UUID],
        doc_type: FromPath[InspectionDocumentType],
        documents: NamedDependency[InspectionDocuments],
    ) -> Response[bytes]:
        return pdf_response(*await documents.document(inspection_id, doc_type))

    @post("/{inspection_id:uuid}/deliveries", guards=INSPECTOR_ONLY, summary="Record the delivery (送达) of an issued document")
    async def deliver(
        self, inspection_id: FromPath[uuid.UUID], data: JSONBody[DeliveryIn], documents: NamedDependency[InspectionDocuments]
    ) -> Response[DeliveryOut]:
        delivery, created = await documents.deliver(inspection_id, data)
        return Response(delivery, status_code=201 if created else 200)

    @get("/{inspection_id:uuid}", summary="One inspection with its results")
    async def get(self, inspection_id: FromPath[uuid.UUID], inspections: NamedDependency[InspectionService]) -> InspectionOut:
        return inspection_out(await inspections.get(inspection_id))

    @post("/{inspection_id:uuid}/notice", guards=INSPECTOR_ONLY, status_code=200, summary="Record the 执法告知 (once)")
    async def notice(
        self, inspection_id: FromPath[uuid.UUID], data: JSONBody[NoticeIn], inspections: NamedDependency[InspectionService]
    ) -> InspectionOut:
        await inspections.give_notice(inspection_id, data)
        return inspection_out(await inspections.get(inspection_id))

    @put(
        "/{inspection_id:uuid}/results",
        guards=INSPECTOR_ONLY,
        request_max_body_size=RESULTS_MAX_BODY_BYTES,  # up to 1000 results; larger batches go in parts
        summary="Upsert results by (checklist_id, item_code)",
    )
    async def results(
        self, inspection_id: FromPath[uuid.UUID], data: JSONBody[ResultsIn], inspections: NamedDependency[InspectionService]
    ) -> InspectionOut:
        return inspection_out(await inspections.put_results(inspection_id, data))

    @post("/{inspection_id:uuid}/submit", guards=INSPECTOR_ONLY, status_code=200, summary="Submit: one hazard per hazard result")
    async def submit(
        self, inspection_id: FromPath[uuid.UUID], data: JSONBody[SubmitIn], inspections: NamedDependency[InspectionService]
    ) -> SubmitOut:
        inspection, hazard_ids = await inspections.submit(inspection_id, data)
        return SubmitOut(id=inspection.id, status=InspectionStatus(inspection.status), hazard_ids=hazard_ids)
