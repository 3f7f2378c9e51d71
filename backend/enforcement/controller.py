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
from backend.enforcement.procedure import ProcedureService
from backend.enforcement.publication import public_decisions
from backend.enforcement.records import RecordService, record_out
from backend.enforcement.register import pdf_response
from backend.enforcement.schemas import (
    ApproveIn,
    CaseIn,
    CaseOut,
    CaseSummary,
    CloseIn,
    DecisionIn,
    DecisionOut,
    DeliveryIn,
    DeliveryOut,
    DiscretionOut,
    DiscussionIn,
    DiscussionOut,
    DocumentType,
    ExtensionIn,
    HearingIn,
    HearingRecordIn,
    HearingRequestIn,
    LegalReviewIn,
    LegalReviewOut,
    PaymentIn,
    PaymentOut,
    PublicDecision,
    RecordIn,
    RecordOut,
    ReplyIn,
    ReplyOut,
    StatementIn,
    StatementOut,
    VerifyOut,
)
from backend.enforcement.service import CaseAccess, CaseService, delivery_out, statement_out
from backend.http import content_disposition
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import CaseStatus, OverdueStep, Role
from backend.wire import ActionIn


def _provider(service: type[CaseAccess]) -> Provide:
    def provide(request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]) -> Any:
        return service(db_session, actor, request.app.state.store, request.app.state.settings)

    return Provide(provide, sync_to_thread=False)


HANDLERS = [requires_role(Role.inspector)]
PARTY = [requires_role(Role.inspector, Role.enterprise)]
LEADERS = [requires_role(Role.leader)]
STAFF = [requires_role(Role.inspector, Role.legal_reviewer, Role.leader)]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
CasesDep = NamedDependency[CaseService]


class CaseController(Controller):
    path = "/cases"
    tags = ["enforcement"]
    dependencies = {
        "cases": _provider(CaseService),
        "records": _provider(RecordService),
        "decisions": _provider(DecisionService),
        "documents": _provider(DocumentIssuer),
        "procedure": _provider(ProcedureService),
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
        overdue_step: Annotated[
            OverdueStep | None, QueryParameter(description="cases whose step is still to be taken and whose deadline has passed")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CaseSummary]:
        return await cases.list(
            overdue_step=overdue_step,
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
        return await cases.decision_view(decision)

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

    @post("/{case_id:uuid}/notify", guards=HANDLERS, status_code=200, summary="告知: issues the 行政处罚告知书 (and 听证告知书)")
    async def notify(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[ActionIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.notify(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/statements", guards=PARTY, summary="陈述、申辩 (or the written waiver), by the enterprise or a handler")
    async def statement(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[StatementIn], procedure: NamedDependency[ProcedureService]
    ) -> Response[StatementOut]:
        statement, created = await procedure.statement(case_id, data)
        return Response(statement_out(statement, None), status_code=201 if created else 200)

    @post("/{case_id:uuid}/statements/{statement_id:uuid}/reply", guards=HANDLERS, status_code=200, summary="复核: answer a statement")
    async def reply(
        self,
        case_id: FromPath[uuid.UUID],
        statement_id: FromPath[uuid.UUID],
        data: JSONBody[ReplyIn],
        procedure: NamedDependency[ProcedureService],
    ) -> ReplyOut:
        return ReplyOut.model_validate(await procedure.reply(case_id, statement_id, data), from_attributes=True)

    @post("/{case_id:uuid}/hearing-request", guards=PARTY, status_code=200, summary="要求听证, within five working days of 告知")
    async def hearing_request(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[HearingRequestIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.hearing_request(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/hearing", guards=HANDLERS, status_code=200, summary="Schedule the hearing (≥ 7 working days ahead)")
    async def hearing(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[HearingIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.schedule_hearing(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/hearing/record", guards=STAFF, status_code=200, summary="听证笔录, by the hearing's host")
    async def hearing_record(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[HearingRecordIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.record_hearing(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/collective-discussion", guards=LEADERS, summary="集体讨论 of the draft (行政处罚法 第五十七条)")
    async def collective_discussion(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[DiscussionIn], procedure: NamedDependency[ProcedureService]
    ) -> Response[DiscussionOut]:
        discussion, created = await procedure.discussion(case_id, data)
        return Response(DiscussionOut.model_validate(discussion, from_attributes=True), status_code=201 if created else 200)

    @post("/{case_id:uuid}/approve", guards=LEADERS, status_code=200, summary="A leader approves the draft decision")
    async def approve(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[ApproveIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.approve(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/deliveries", guards=HANDLERS, summary="送达 of an issued document; a decision's starts its payment period")
    async def delivery(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[DeliveryIn], procedure: NamedDependency[ProcedureService]
    ) -> Response[DeliveryOut]:
        delivery, created = await procedure.delivery(case_id, data)
        return Response(delivery_out(delivery), status_code=201 if created else 200)

    @post("/{case_id:uuid}/payments", guards=HANDLERS, summary="A payment of a fine (and 加处罚款), with its receipt")
    async def payment(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[PaymentIn], procedure: NamedDependency[ProcedureService]
    ) -> Response[PaymentOut]:
        payment, created = await procedure.payment(case_id, data)
        return Response(PaymentOut.model_validate(payment, from_attributes=True), status_code=201 if created else 200)

    @post("/{case_id:uuid}/close", guards=LEADERS, status_code=200, summary="结案 (a leader): issues the 结案审批表")
    async def close(
        self, case_id: FromPath[uuid.UUID], data: JSONBody[CloseIn], procedure: NamedDependency[ProcedureService], cases: CasesDep
    ) -> CaseOut:
        await procedure.close(case_id, data)
        return await cases.detail(case_id)

    @post("/{case_id:uuid}/decide", guards=HANDLERS, status_code=200, summary="Decide; issues a 行政处罚决定书 per target")
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
        self,
        case_id: FromPath[uuid.UUID],
        doc_type: FromPath[DocumentType],
        documents: NamedDependency[DocumentIssuer],
        target: Annotated[
            str | None, QueryParameter(max_length=100, description="whose document: `enterprise` or a person's name (see target_key)")
        ] = None,
    ) -> Response[bytes]:
        return pdf_response(*await documents.document(case_id, doc_type, target))

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
