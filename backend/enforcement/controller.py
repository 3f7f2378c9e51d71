"""HTTP for enforcement cases, the discretion table and the public listing of decisions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit import Actor
from backend.auth import requires_role
from backend.enforcement.discretion import search
from backend.enforcement.schemas import (
    CaseIn,
    CaseOut,
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
from backend.enforcement.service import CaseService, decision_out, public_decisions, record_out
from backend.pagination import DEFAULT_LIMIT, Page


def provide_case_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> CaseService:
    return CaseService(db_session, actor, request.app.state.store, request.app.state.settings)


HANDLERS = [requires_role("inspector")]


class CaseController(Controller):
    path = "/cases"
    tags = ["enforcement"]
    dependencies = {"cases": Provide(provide_case_service, sync_to_thread=False)}

    @post("/", guards=HANDLERS, summary="立案: open a case with at least two certified handlers")
    async def create(self, data: JSONBody[CaseIn], cases: NamedDependency[CaseService]) -> Response[CaseOut]:
        case, created = await cases.create(data)
        return Response(await cases.detail(case.id), status_code=201 if created else 200)

    @post("/{case_id:uuid}/records", guards=HANDLERS, summary="Append to the full-process record (执法全过程记录)")
    async def add_record(self, case_id: FromPath[uuid.UUID], data: JSONBody[RecordIn], cases: NamedDependency[CaseService]) -> Response[RecordOut]:
        record, created = await cases.add_record(case_id, data)
        return Response(record_out(record), status_code=201 if created else 200)

    @get("/{case_id:uuid}/records", summary="The record, in order, with its hash chain")
    async def records(self, case_id: FromPath[uuid.UUID], cases: NamedDependency[CaseService]) -> list[RecordOut]:
        return [record_out(r) for r in await cases.records(case_id)]

    @get("/{case_id:uuid}/verify", summary="Recompute the chain and re-hash the evidence in the store")
    async def verify(self, case_id: FromPath[uuid.UUID], cases: NamedDependency[CaseService]) -> VerifyOut:
        return await cases.verify(case_id)

    @post("/{case_id:uuid}/decision", guards=HANDLERS, status_code=200, summary="Draft the decision (major ones go to legal review)")
    async def decision(self, case_id: FromPath[uuid.UUID], data: JSONBody[DecisionIn], cases: NamedDependency[CaseService]) -> DecisionOut:
        decision = await cases.draft_decision(case_id, data)
        return decision_out(decision, (await cases.detail(case_id)).status)

    @post(
        "/{case_id:uuid}/legal-review",
        guards=[requires_role("legal_reviewer")],
        status_code=200,
        summary="法制审核: approve or return (a reviewer of the case's agency tree, never a handler)",
    )
    async def legal_review(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[LegalReviewIn], cases: NamedDependency[CaseService]
    ) -> LegalReviewOut:
        return LegalReviewOut.model_validate(await cases.legal_review(case_id, data), from_attributes=True)

    @post("/{case_id:uuid}/decide", guards=HANDLERS, status_code=200, summary="Decide; issues the 行政处罚决定书")
    async def decide(self, case_id: FromPath[uuid.UUID], cases: NamedDependency[CaseService]) -> CaseOut:
        await cases.decide(case_id)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/extension", guards=HANDLERS, status_code=200, summary="Record an approved extension of the time limit")
    async def extension(self, case_id: FromPath[uuid.UUID], data: JSONBody[ExtensionIn], cases: NamedDependency[CaseService]) -> CaseOut:
        await cases.extend(case_id, data)
        return await cases.detail(case_id)

    @get("/{case_id:uuid}/documents/{doc_type:str}", media_type="application/pdf", summary="An enforcement document as PDF (issued and numbered once)")
    async def document(self, case_id: FromPath[uuid.UUID], doc_type: FromPath[DocumentType], cases: NamedDependency[CaseService]) -> Response[bytes]:
        issued, pdf = await cases.document(case_id, doc_type)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "X-Document-Number": issued.number.encode("utf-8").decode("latin-1"),
                "X-Content-SHA256": issued.sha256,
                "Content-Disposition": f'inline; filename="{doc_type}.pdf"',
            },
        )

    @get("/{case_id:uuid}", summary="The case with its decision, reviews, history and documents")
    async def get(self, case_id: FromPath[uuid.UUID], cases: NamedDependency[CaseService]) -> CaseOut:
        return await cases.detail(case_id)


@get("/discretion", tags=["enforcement"], summary="The discretion table (自由裁量基准)")
async def discretion(q: FromQuery[str | None] = None) -> DiscretionOut:
    return DiscretionOut(items=search(q))


@get("/public/decisions", tags=["public"], exclude_from_auth=True, summary="行政执法公示: decided cases, personal data masked")
async def public_decision_list(
    db_session: NamedDependency[AsyncSession],
    cursor: FromQuery[str | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = DEFAULT_LIMIT,
) -> Page[PublicDecision]:
    return await public_decisions(db_session, cursor, limit)
