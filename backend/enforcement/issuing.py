"""Issuing the enforcement documents: numbered once per agency, year and type, rendered, stored, and chained.

A document is issued the first time a handler asks for it (the penalty decision when the case is decided); every
later request serves the stored PDF, whose sha256 stands in the case's hash chain so a printed copy can be checked.
The PDF is kept in the database with its row (documents issued before that was so are read from the object store)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit
from backend.accounts.models import Agency, Enterprise, User
from backend.clock import now
from backend.db import upsert_into
from backend.enforcement.documents import TITLES, DocumentContent, chinese_date, document_number, render
from backend.enforcement.models import Case, CaseHandler, DocumentCounter, IssuedDocument
from backend.enforcement.procedure_documents import PROCEDURE_DOCUMENTS, ProcedureDocuments
from backend.enforcement.records import RecordService
from backend.enforcement.service import CaseAccess
from backend.errors import Conflict, ErrorCode, ValidationFailed
from backend.hazards.models import Hazard
from backend.idempotency import fingerprint
from backend.inspections.models import Inspection, InspectionInspector, InspectionResult
from backend.unit_of_work import end_reads, flush
from backend.vocabulary import InspectionStatus, Role

_RENDERING = threading.Lock()
ON_DEMAND = frozenset({"inspection_record", "rectification_order"})  # issued when a handler first asks for them


def _render_alone(content: DocumentContent) -> bytes:
    """reportlab keeps module-level state and does not promise thread safety: one PDF at a time (they are rare)."""
    with _RENDERING:
        return render(content)


async def render_off_loop(content: DocumentContent) -> bytes:
    """The PDF, rendered in a worker thread (reportlab is CPU work), one at a time."""
    return await anyio.to_thread.run_sync(_render_alone, content)


async def next_number(session: AsyncSession, agency_id: uuid.UUID, doc_type: str, year: int) -> int:
    """The next 文号 sequence of the agency, year and document type, taken in the caller's transaction."""
    statement = (
        upsert_into(session.get_bind().dialect.name, DocumentCounter)
        .values(agency_id=agency_id, year=year, type=doc_type, last=1)
        .on_conflict_do_update(index_elements=["agency_id", "year", "type"], set_={"last": col(DocumentCounter.last) + 1})
        .returning(col(DocumentCounter.last))
    )
    return (await session.execute(statement)).scalar_one()


class DocumentIssuer(CaseAccess):
    async def document(self, case_id: uuid.UUID, doc_type: str, target: str | None = None) -> tuple[IssuedDocument, bytes]:
        await self._case(case_id)
        issued = await self.latest(case_id, doc_type, target)
        if issued is None:
            if doc_type not in ON_DEMAND:
                raise Conflict(f"the case has not reached the step that issues the {TITLES[doc_type]}", code=ErrorCode.DOCUMENT_UNAVAILABLE)
            if self.actor.role != Role.inspector or self.actor.user_id not in await self._handler_ids(case_id):
                raise Conflict(f"{TITLES[doc_type]} has not been issued yet; a handler issues it", code=ErrorCode.DOCUMENT_NOT_ISSUED)
            issued = await self.issue(await self._as_handler(case_id), doc_type)
            await flush(self.session)
        if issued.pdf is not None:
            return issued, issued.pdf
        # Issued before PDFs were kept in the database: read from the store, with no transaction open.
        assert issued.object_key is not None
        await end_reads(self.session)
        return issued, await self.store.get_bytes(issued.object_key)

    async def latest(self, case_id: uuid.UUID, doc_type: str, target: str | None) -> IssuedDocument | None:
        """The latest edition of the document for `target`. Without a target: the only target's, or the latest
        issued when the type is not per target; a penalty decision of several targets needs `target` (422)."""
        query = select(IssuedDocument).where(col(IssuedDocument.case_id) == case_id, col(IssuedDocument.type) == doc_type)
        rows = list((await self.session.execute(query.order_by(col(IssuedDocument.issued_at), col(IssuedDocument.edition)))).scalars())
        targets = list(dict.fromkeys(r.target for r in rows))
        if target is not None:
            rows = [r for r in rows if r.target == target]
            if not rows and targets:
                raise ValidationFailed(f"target: the {TITLES[doc_type]} of this case is addressed to {targets}", field="target")
        elif doc_type == "penalty_decision" and len(targets) > 1:
            raise ValidationFailed(f"target: this case has one {TITLES[doc_type]} per target, name one of {targets}", field="target")
        return rows[-1] if rows else None

    async def issue(self, case: Case, doc_type: str, *, target: str = "", subject: Any = None) -> IssuedDocument:
        """Number and render the PDF once and keep it with its row; its sha256 goes into the hash chain. No store call:
        the caller holds the case row locked. Rendering (reportlab, CPU work) runs in a worker thread. `target`
        names whom it is addressed to (one 行政处罚决定书 per target); issued again for the same target, it is a new
        edition. `subject` is what the document records (a delivery, the closing)."""
        content = await self._document_content(case, doc_type, target, subject)
        pdf = await render_off_loop(content)
        sha = hashlib.sha256(pdf).hexdigest()
        assert self.actor.user_id is not None  # documents are issued by a case's staff, never by a system actor
        editions = select(func.count()).where(
            col(IssuedDocument.case_id) == case.id, col(IssuedDocument.type) == doc_type, col(IssuedDocument.target) == target
        )
        issued = IssuedDocument(
            case_id=case.id,
            type=doc_type,
            target=target,
            edition=(await self.session.execute(editions)).scalar_one() + 1,
            number=content.number,
            sha256=sha,
            size=len(pdf),
            pdf=pdf,
            issued_by=self.actor.user_id,
        )
        self.session.add(issued)
        RecordService(self.session, self.actor, self.store, self.settings).append(
            case,
            kind="note",
            occurred_at=content.issued_at,
            evidence=[],
            description=f"签发《{TITLES[doc_type]}》{content.number}，PDF sha256 {sha}",
            client_fingerprint=fingerprint({"document": doc_type, "sha256": sha}),
        )
        audit.record(
            self.session,
            self.actor,
            "case.document",
            "case",
            case.id,
            {"type": doc_type, "target": target, "number": content.number, "sha256": sha},
        )
        return issued

    async def _document_content(self, case: Case, doc_type: str, target: str = "", subject: Any = None) -> DocumentContent:
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        agency = await self.session.get(Agency, case.agency_id)
        assert enterprise is not None and agency is not None
        issued_at = now()
        number = document_number(
            agency.name, doc_type, issued_at.year, await next_number(self.session, agency.id, doc_type, issued_at.year)
        )
        content = DocumentContent(
            type=doc_type,
            number=number,
            agency_name=agency.name,
            enterprise_name=enterprise.name,
            credit_code=enterprise.credit_code,
            address=enterprise.address,
            principal=enterprise.principal,
            issued_at=issued_at,
        )
        handlers = (
            await self.session.execute(
                select(col(User.display_name), col(CaseHandler.certificate_no))
                .join(CaseHandler, col(CaseHandler.user_id) == col(User.id))
                .where(col(CaseHandler.case_id) == case.id)
            )
        ).all()
        content.lines.append(("执法人员及执法证号", "、".join(f"{name}（{cert}）" for name, cert in handlers)))
        if doc_type in PROCEDURE_DOCUMENTS:
            return await ProcedureDocuments(self, case, content, enterprise, agency).build(doc_type, target, subject)
        inspection = await self._inspection_of(case)
        if doc_type == "inspection_record":
            team = (
                await self.session.execute(
                    select(col(User.display_name), col(InspectionInspector.certificate_no))
                    .join(InspectionInspector, col(InspectionInspector.user_id) == col(User.id))
                    .where(col(InspectionInspector.inspection_id) == inspection.id)
                )
            ).all()
            results = list(
                (await self.session.execute(select(InspectionResult).where(col(InspectionResult.inspection_id) == inspection.id))).scalars()
            )
            findings = [f"{r.item_code}：{(r.hazard or {}).get('description', '')}" for r in results if r.outcome == "hazard"]
            content.lines += [
                ("检查时间", f"{chinese_date(inspection.started_at or inspection.created_at)}"),
                ("检查人员", "、".join(f"{name}（{cert or '—'}）" for name, cert in team)),
                ("在场人员", "、".join(f"{a['name']}" for a in inspection.attendees) or "—"),
            ]
            content.sections = [
                ("检查情况：", [f"共检查 {len(results)} 项，发现隐患 {len(findings)} 项。"]),
                ("发现的问题：", findings or ["未发现问题。"]),
                ("交流反馈：", [inspection.feedback or "—"]),
            ]
            return content
        hazards = list(
            (
                await self.session.execute(select(Hazard).where(col(Hazard.inspection_id) == inspection.id).order_by(col(Hazard.item_code)))
            ).scalars()
        )
        if not hazards:
            raise Conflict("the inspection found no hazard to order rectified", code=ErrorCode.DOCUMENT_UNAVAILABLE)
        found = (await self.session.execute(select(InspectionResult).where(col(InspectionResult.inspection_id) == inspection.id))).scalars()
        days = {(str(r.checklist_id), r.item_code): (r.hazard or {}).get("rectify_days") for r in found}
        immediate = [days.get((str(h.checklist_id), h.item_code or "")) == 0 for h in hazards]
        content.sections = [
            (
                "经查，你单位存在下列事故隐患：",
                [
                    f"{n}. {h.description}（{'重大' if h.level == 'major' else '一般'}事故隐患；"
                    f"{'立即排除' if now_ else '整改期限：' + (chinese_date(h.deadline) if h.deadline else '立即')}）"
                    for n, (h, now_) in enumerate(zip(hazards, immediate, strict=True), start=1)
                ],
            ),
            ("整改要求：", rectification_requirements(hazards, immediate)),
        ]
        return content

    async def _inspection_of(self, case: Case) -> Inspection:
        inspection = await self.session.get(Inspection, case.inspection_id) if case.inspection_id else None
        if inspection is None or inspection.status != InspectionStatus.submitted:
            raise Conflict("this document is made from the case's submitted inspection", code=ErrorCode.DOCUMENT_UNAVAILABLE)
        return inspection


# 安全生产法 第六十五条（三） and 第一百零二条, each with its content as the project's verified facts give it
# (checklists/SOURCES.md, SRC-G10); the facts summarise 第六十五条（三）, so it is cited with its content, not quoted.
ARTICLE_65 = (
    "《中华人民共和国安全生产法》第六十五条（三）（执法中发现隐患责令立即排除，"
    "重大隐患排除前或排除中无法保证安全的责令撤出作业人员、暂时停产停业或停止使用，排除后经审查同意方可恢复）"
)
ARTICLE_102 = "《中华人民共和国安全生产法》第一百零二条（未采取措施消除事故隐患的，责令立即消除或者限期消除）"


def rectification_requirements(hazards: list[Hazard], immediate: list[bool]) -> list[str]:
    """The 整改要求 of a 责令限期整改指令书, each order on its own provision: 立即排除 on 第六十五条; a deadline on
    第一百零二条's 限期消除 (第六十五条 orders immediate removal, it is no basis for a 30–90 day deadline); and, for
    a major hazard, 第六十五条's withdrawal and stop where safety cannot be kept while it is removed."""
    numbers = {True: [], False: []}  # type: dict[bool, list[str]]
    for n, now_ in enumerate(immediate, start=1):
        numbers[now_].append(str(n))
    paragraphs = []
    if numbers[True]:
        paragraphs.append(f"依据{ARTICLE_65}。责令你单位立即排除第{'、'.join(numbers[True])}项事故隐患。")
    if numbers[False]:
        paragraphs.append(f"依据{ARTICLE_102}。责令你单位在上述期限内消除第{'、'.join(numbers[False])}项事故隐患，并将整改情况书面报告。")
    majors = [str(n) for n, h in enumerate(hazards, start=1) if h.level == "major"]
    if majors:
        paragraphs.append(
            f"第{'、'.join(majors)}项为重大事故隐患。依据{ARTICLE_65}，排除前或排除中无法保证安全的，责令撤出作业人员、"
            "暂时停产停业或停止使用，排除后经审查同意方可恢复。"
        )
    return paragraphs
