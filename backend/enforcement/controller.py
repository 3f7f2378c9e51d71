"""HTTP for enforcement cases, the discretion table and the public listing of decisions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.enforcement.case_file import CaseFileService, stream_zip
from backend.enforcement.decisions import DecisionService
from backend.enforcement.discretion import search
from backend.enforcement.issuing import DocumentIssuer
from backend.enforcement.publication import public_decisions
from backend.enforcement.records import RecordService, record_out
from backend.enforcement.register import pdf_response
from backend.enforcement.schemas import (
    CaseIn,
    CaseOut,
    CaseSummary,
    DecisionIn,
    DecisionOut,
    DiscretionOut,
    DocumentType,
    ExtensionIn,
    LegalReviewIn,
    LegalReviewOut,
    PublicDecision,
    RecordIn,
    RecordOut,
    VerifyOut,
)
from backend.enforcement.service import CaseAccess, CaseService, decision_out
from backend.http import content_disposition
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import CaseStatus, Role


def _provider(service: type[CaseAccess]) -> Provide:
    def provide(request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> Any:
        return service(db_session, actor, request.app.state.store, request.app.state.settings)

    return Provide(provide, sync_to_thread=False)


HANDLERS = [requires_role(Role.inspector)]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


class CaseController(Controller):
    path = "/cases"
    tags = ["enforcement"]
    dependencies = {
        "cases": _provider(CaseService),
        "records": _provider(RecordService),
        "decisions": _provider(DecisionService),
        "documents": _provider(DocumentIssuer),
        "files": _provider(CaseFileService),
    }

    @post("/", guards=HANDLERS, summary="立案: open a case with at least two certified handlers")
    async def create(self, data: JSONBody[CaseIn], cases: NamedDependency[CaseService]) -> Response[CaseOut]:
        case, created = await cases.create(data)
        return Response(await cases.detail(case.id), status_code=201 if created else 200)

    @get("/", summary="Cases in the caller's scope: a legal reviewer's 待审核 queue, an inspector's own cases, an enterprise's")
    async def list(
        self,
        cases: NamedDependency[CaseService],
        status: FromQuery[CaseStatus | None] = None,
        enterprise_id: FromQuery[uuid.UUID | None] = None,
        awaiting_my_review: Annotated[
            bool, QueryParameter(description="legal reviewers: major drafts waiting for review on cases they do not handle")
        ] = False,
        handled_by_me: Annotated[bool, QueryParameter(description="cases the caller is a handler of")] = False,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CaseSummary]:
        return await cases.list(
            status=status,
            enterprise_id=enterprise_id,
            awaiting_my_review=awaiting_my_review,
            handled_by_me=handled_by_me,
            cursor=cursor,
            limit=limit,
        )

    @post("/{case_id:uuid}/records", guards=HANDLERS, summary="Append to the full-process record (执法全过程记录)")
    async def add_record(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[RecordIn], records: NamedDependency[RecordService]
    ) -> Response[RecordOut]:
        record, created = await records.add(case_id, data)
        return Response(record_out(record), status_code=201 if created else 200)

    @get("/{case_id:uuid}/records", summary="The record, in chain order, with its hashes")
    async def records(
        self,
        case_id: FromPath[uuid.UUID],
        records: NamedDependency[RecordService],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[RecordOut]:
        return await records.page(case_id, cursor, limit)

    @get("/{case_id:uuid}/verify", summary="Recompute the chain and re-hash the evidence in the store")
    async def verify(self, case_id: FromPath[uuid.UUID], records: NamedDependency[RecordService]) -> VerifyOut:
        return await records.verify(case_id)

    @post("/{case_id:uuid}/decision", guards=HANDLERS, status_code=200, summary="Draft the decision (major ones go to legal review)")
    async def decision(
        self,
        case_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn],
        decisions: NamedDependency[DecisionService],
        cases: NamedDependency[CaseService],
    ) -> DecisionOut:
        decision = await decisions.draft(case_id, data)
        return decision_out(decision, (await cases.detail(case_id)).status)

    @post(
        "/{case_id:uuid}/legal-review",
        guards=[requires_role(Role.legal_reviewer)],
        status_code=200,
        summary="法制审核: approve or return (a reviewer of the case's agency tree, never a handler)",
    )
    async def legal_review(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[LegalReviewIn], decisions: NamedDependency[DecisionService]
    ) -> LegalReviewOut:
        return LegalReviewOut.model_validate(await decisions.legal_review(case_id, data), from_attributes=True)

    @post("/{case_id:uuid}/decide", guards=HANDLERS, status_code=200, summary="Decide; issues the 行政处罚决定书")
    async def decide(
        self, case_id: FromPath[uuid.UUID], decisions: NamedDependency[DecisionService], cases: NamedDependency[CaseService]
    ) -> CaseOut:
        await decisions.decide(case_id)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/extension", guards=HANDLERS, status_code=200, summary="Record an approved extension of the time limit")
    async def extension(
        self,
        case_id: FromPath[uuid.UUID],
        data: JSONBody[ExtensionIn],
        decisions: NamedDependency[DecisionService],
        cases: NamedDependency[CaseService],
    ) -> CaseOut:
        await decisions.extend(case_id, data)
        return await cases.detail(case_id)

    @get(
        "/{case_id:uuid}/documents/{doc_type:str}",
        media_type="application/pdf",
        # the first request of a handler issues and numbers the document; before that, or before the case reached
        # the document, 409 (document_not_issued, not_decided, document_unavailable)
        opt={"writes": True, "problem_statuses": [409]},
        summary="An enforcement document as PDF (issued and numbered once)",
    )
    async def document(
        self, case_id: FromPath[uuid.UUID], doc_type: FromPath[DocumentType], documents: NamedDependency[DocumentIssuer]
    ) -> Response[bytes]:
        return pdf_response(*await documents.document(case_id, doc_type))

    @get(
        "/{case_id:uuid}/file",
        media_type="application/zip",
        opt={"problem_statuses": [409]},  # evidence_missing: originals missing from the store, checked before any byte is sent
        summary="The case file (案卷) as a streamed ZIP: 案卷.pdf, the issued documents, the evidence originals, manifest.json",
    )
    async def file(self, case_id: FromPath[uuid.UUID], files: NamedDependency[CaseFileService], request: Request[Any, Any, Any]) -> Stream:
        case_file = await files.prepare(case_id)
        return Stream(
            stream_zip(request.app.state.store, case_file),
            media_type="application/zip",
            headers={"Content-Disposition": content_disposition(f"案卷-{case_id}.zip", inline=False)},
        )

    @get("/{case_id:uuid}", summary="The case with its decision, reviews, history and documents")
    async def get(self, case_id: FromPath[uuid.UUID], cases: NamedDependency[CaseService]) -> CaseOut:
        return await cases.detail(case_id)


@get("/discretion", tags=["enforcement"], summary="The discretion table (自由裁量基准)")
async def discretion(q: Annotated[str | None, QueryParameter(max_length=100)] = None) -> DiscretionOut:
    return DiscretionOut(items=search(q))


@get("/public/decisions", tags=["public"], exclude_from_auth=True, summary="行政执法公示: decided cases, personal data masked")
async def public_decision_list(
    db_session: NamedDependency[AsyncSession],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[PublicDecision]:
    return await public_decisions(db_session, cursor, limit)
