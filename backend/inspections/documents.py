"""The documents of an inspection: 现场检查记录 and 责令限期整改指令书 (addressed to the enterprise, listing the hazards
found with their deadlines), issued once by the inspection's team and numbered per agency/year/type like every other
document (`backend.enforcement.register`), and their deliveries (送达).

A case opened from an inspection serves these same documents (`backend.enforcement.issuing`): one 文号 per document,
whichever way it is asked for first."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit, scope
from backend.accounts.models import User
from backend.audit import Actor
from backend.clock import local_date
from backend.enforcement.documents import TITLES, DocumentContent, chinese_date
from backend.enforcement.models import DocumentDelivery, IssuedDocument
from backend.enforcement.register import first_issued, issue, numbered_content, pdf_of
from backend.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.idempotency import ensure_same, fingerprint
from backend.inspections.models import Inspection, InspectionInspector, InspectionResult
from backend.inspections.schemas import DeliveryIn, DeliveryOut
from backend.settings import Settings
from backend.storage import ObjectStore
from backend.unit_of_work import flush, insert_once
from backend.vocabulary import EvidenceStatus, InspectionStatus, Role

INSPECTION_DOCUMENTS = ("inspection_record", "rectification_order")
CLOCK_SKEW = timedelta(minutes=10)  # a phone's clock may run this much ahead of the server's


def submitted(inspection: Inspection | None) -> Inspection:
    if inspection is None or inspection.status != InspectionStatus.submitted:
        raise Conflict("this document is made from a submitted inspection", code=ErrorCode.DOCUMENT_UNAVAILABLE)
    return inspection


async def _team(session: AsyncSession, inspection: Inspection) -> str:
    """The inspectors with their certificate numbers (执法证号) as held on the day."""
    team = (
        await session.execute(
            select(col(User.display_name), col(InspectionInspector.certificate_no))
            .join(InspectionInspector, col(InspectionInspector.user_id) == col(User.id))
            .where(col(InspectionInspector.inspection_id) == inspection.id)
            .order_by(col(User.display_name))
        )
    ).all()
    return "、".join(f"{name}（{cert or '—'}）" for name, cert in team)


async def inspection_record(session: AsyncSession, inspection: Inspection, content: DocumentContent) -> DocumentContent:
    """现场检查记录: when, who inspected and who attended, what was checked and found, what was said (安全生产法
    第六十八条: the inspection is recorded in writing)."""
    results = list((await session.execute(select(InspectionResult).where(col(InspectionResult.inspection_id) == inspection.id))).scalars())
    findings = [f"{r.item_code}：{(r.hazard or {}).get('description') or r.note or ''}" for r in results if r.outcome == "hazard"]
    content.lines += [
        ("检查时间", f"{chinese_date(inspection.started_at or inspection.created_at)}"),
        ("检查人员", await _team(session, inspection)),
        ("在场人员", "、".join(f"{a['name']}" for a in inspection.attendees) or "—"),
    ]
    content.sections = [
        ("检查情况：", [f"共检查 {len(results)} 项，发现隐患 {len(findings)} 项。"]),
        ("发现的问题：", findings or ["未发现问题。"]),
        ("交流反馈：", [inspection.feedback or "—"]),
    ]
    return content


def removed_at_once(hazard: Hazard, inspection: Inspection) -> bool:
    """Ordered removed at once (安全生产法 第六十五条第一款第（三）项: 责令立即排除): a `rectify_days` of 0, which puts
    the deadline on the inspection's own day (or no deadline at all)."""
    found_on = local_date(inspection.submitted_at or inspection.created_at)
    return hazard.deadline is None or local_date(hazard.deadline) <= found_on


def deadline_text(hazard: Hazard, inspection: Inspection) -> str:
    """立即排除 for a hazard ordered removed at once; else the last day, in Chinese."""
    if hazard.deadline is None or removed_at_once(hazard, inspection):
        return "立即排除"
    return chinese_date(hazard.deadline)


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


async def rectification_order(session: AsyncSession, inspection: Inspection, content: DocumentContent) -> DocumentContent:
    """责令限期整改指令书 to the enterprise: every hazard the inspection found, its level and its deadline, and the
    orders with their legal basis (`rectification_requirements`)."""
    hazards = list(
        (await session.execute(select(Hazard).where(col(Hazard.inspection_id) == inspection.id).order_by(col(Hazard.item_code)))).scalars()
    )
    if not hazards:
        raise Conflict("the inspection found no hazard to order rectified", code=ErrorCode.DOCUMENT_UNAVAILABLE)
    content.lines.append(("执法人员及执法证号", await _team(session, inspection)))
    content.sections = [
        (
            "经查，你单位存在下列事故隐患：",
            [
                f"{n}. {h.description}（{'重大' if h.level == 'major' else '一般'}事故隐患；整改期限：{deadline_text(h, inspection)}）"
                for n, h in enumerate(hazards, start=1)
            ],
        ),
        ("整改要求：", rectification_requirements(hazards, [removed_at_once(h, inspection) for h in hazards])),
    ]
    return content


BUILDERS = {"inspection_record": inspection_record, "rectification_order": rectification_order}


def delivery_out(delivery: DocumentDelivery, document: IssuedDocument) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        inspection_id=delivery.inspection_id,
        document=document.type,  # type: ignore[arg-type]
        document_number=document.number,
        method=delivery.method,  # type: ignore[arg-type]
        delivered_at=delivery.delivered_at,
        recipient=delivery.recipient,
        evidence=delivery.evidence,  # type: ignore[arg-type]
        recorded_by=delivery.recorded_by,
        recorded_at=delivery.recorded_at,
    )


class InspectionDocuments:
    def __init__(self, session: AsyncSession, actor: Actor, store: ObjectStore, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.store = store
        self.settings = settings

    async def _on_team(self, inspection: Inspection) -> bool:
        query = select(col(InspectionInspector.user_id)).where(
            col(InspectionInspector.inspection_id) == inspection.id, col(InspectionInspector.user_id) == self.actor.user_id
        )
        return self.actor.role == Role.inspector and (await self.session.execute(query)).first() is not None

    async def document(self, inspection_id: uuid.UUID, doc_type: str) -> tuple[IssuedDocument, bytes]:
        """The document, issued by the first request of someone on the inspection's team; 409 before that, or before
        the inspection is submitted."""
        inspection = submitted(await scope.one(self.session, self.actor, Inspection, inspection_id))
        issued = await first_issued(self.session, doc_type, col(IssuedDocument.inspection_id) == inspection.id)
        if issued is None:
            if not await self._on_team(inspection):
                raise Conflict(
                    f"{TITLES[doc_type]} has not been issued yet; the inspection's team issues it", code=ErrorCode.DOCUMENT_NOT_ISSUED
                )
            await scope.one(self.session, self.actor, Inspection, inspection_id, lock=True)  # one issue at a time
            issued = await first_issued(self.session, doc_type, col(IssuedDocument.inspection_id) == inspection.id)
            if issued is None:
                issued = await self.issue(inspection, doc_type)
                await flush(self.session)
        return issued, await pdf_of(self.session, self.store, issued)

    async def issue(
        self, inspection: Inspection, doc_type: str, *, case_id: uuid.UUID | None = None, agency_id: uuid.UUID | None = None
    ) -> IssuedDocument:
        """Number and render the document as the caller's (an officer's) act, and audit it: in the name of the caller's
        agency, or of `agency_id` (the agency handling the case `case_id` it was asked for through; the caller chains
        it there)."""
        agency_id = agency_id or self.actor.agency_id
        assert self.actor.user_id is not None and agency_id is not None  # an officer issues documents
        content = await numbered_content(self.session, doc_type, agency_id, inspection.enterprise_id)
        content = await BUILDERS[doc_type](self.session, inspection, content)
        issued = await issue(self.session, content, issued_by=self.actor.user_id, inspection_id=inspection.id, case_id=case_id)
        audit.record(
            self.session,
            self.actor,
            "inspection.document",
            "inspection",
            inspection.id,
            {"type": doc_type, "number": content.number, "sha256": issued.sha256, "case_id": case_id},
        )
        return issued

    async def deliver(self, inspection_id: uuid.UUID, data: DeliveryIn) -> tuple[DeliveryOut, bool]:
        """Record a delivery (送达) of an issued document of the inspection; a retry with the same id and content
        returns the first record. The proof is evidence of the inspection or of a hazard it found (a submitted
        inspection takes no new evidence: a receipt signed afterwards is uploaded to the hazard it orders fixed)."""
        delivery_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {
                "document": data.document,
                "method": data.method,
                "delivered_at": data.delivered_at,
                "recipient": data.recipient,
                "evidence_ids": sorted(str(e) for e in data.evidence_ids),
            }
        )
        inspection = await scope.one(self.session, self.actor, Inspection, inspection_id, lock=True)
        if not await self._on_team(inspection):
            raise Forbidden("only the inspection's own team records its deliveries", code=ErrorCode.NOT_ON_TEAM)
        existing = await self.session.get(DocumentDelivery, delivery_id)
        if existing is not None:
            ensure_same(existing.client_fingerprint if existing.inspection_id == inspection.id else None, digest, "delivery", delivery_id)
            return delivery_out(existing, await self._document(existing.document_id)), False
        document = await first_issued(self.session, data.document, col(IssuedDocument.inspection_id) == inspection.id)
        if document is None:
            raise Conflict(
                f"{TITLES[data.document]} has not been issued yet: issue it before recording its delivery",
                code=ErrorCode.DOCUMENT_NOT_ISSUED,
            )
        if data.delivered_at < document.issued_at - CLOCK_SKEW:
            raise ValidationFailed("a document is delivered after it was issued", field="delivered_at")
        evidence = await scope.many(
            self.session,
            self.actor,
            Evidence,
            data.evidence_ids,
            field="evidence_ids",
            where=[
                or_(
                    col(Evidence.inspection_id) == inspection.id,
                    col(Evidence.hazard_id).in_(select(col(Hazard.id)).where(col(Hazard.inspection_id) == inspection.id)),
                ),
                Evidence.status == EvidenceStatus.stored,
            ],
        )
        assert self.actor.user_id is not None
        delivery = DocumentDelivery(
            id=delivery_id,
            document_id=document.id,
            inspection_id=inspection.id,
            method=data.method,
            delivered_at=data.delivered_at,
            recipient=data.recipient,
            evidence=[{"id": str(e.id), "sha256": e.sha256} for e in evidence],
            recorded_by=self.actor.user_id,
            client_fingerprint=digest,
        )
        record: dict[str, Any] = {"document": data.document, "number": document.number, "method": data.method, "recipient": data.recipient}
        if not await insert_once(
            self.session, delivery, audit.entry(self.actor, "inspection.delivery", "inspection", inspection.id, record)
        ):  # a concurrent retry recorded it first
            existing = await self.session.get(DocumentDelivery, delivery_id)
            assert existing is not None
            ensure_same(existing.client_fingerprint, digest, "delivery", delivery_id)
            return delivery_out(existing, document), False
        return delivery_out(delivery, document), True

    async def _document(self, document_id: uuid.UUID) -> IssuedDocument:
        document = await self.session.get(IssuedDocument, document_id)
        assert document is not None
        return document
