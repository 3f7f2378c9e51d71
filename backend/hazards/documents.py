"""整改复查意见书: the agency's written opinion on its review (复查) of a hazard's rectification.

One per review by an inspector (accepted or rejected), numbered per agency/year/type like every document
(`backend.enforcement.register`), in the reviewer's agency and name, issued the first time anyone who may read the
hazard asks for it. A hazard the enterprise accepted itself (its own self-found general hazard) had no review by
the agency, so it has no such document."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import audit, scope
from backend.accounts.models import User
from backend.audit import Actor
from backend.enforcement.documents import DocumentContent, chinese_date
from backend.enforcement.models import IssuedDocument
from backend.enforcement.register import first_issued, issue, numbered_content, pdf_of
from backend.errors import Conflict, ErrorCode
from backend.hazards.models import Hazard, HazardEvent
from backend.storage import ObjectStore
from backend.unit_of_work import flush
from backend.vocabulary import HazardLevel, Role

REVIEW_OPINION = "review_opinion"
REVIEWS = ("accepted", "rejected")


class ReviewOpinions:
    def __init__(self, session: AsyncSession, actor: Actor, store: ObjectStore) -> None:
        self.session = session
        self.actor = actor
        self.store = store

    async def document(self, hazard_id: uuid.UUID) -> tuple[IssuedDocument, bytes]:
        """The opinion on the hazard's latest review; 409 document_unavailable before any review by the agency."""
        hazard = await scope.one(self.session, self.actor, Hazard, hazard_id)
        review, reviewer = await self._latest_review(hazard.id)
        issued = await first_issued(self.session, REVIEW_OPINION, col(IssuedDocument.hazard_event_id) == review.id)
        if issued is None:
            hazard = await scope.one(self.session, self.actor, Hazard, hazard_id, lock=True)  # one issue at a time
            issued = await first_issued(self.session, REVIEW_OPINION, col(IssuedDocument.hazard_event_id) == review.id)
            if issued is None:
                issued = await self._issue(hazard, review, reviewer)
                await flush(self.session)
        return issued, await pdf_of(self.session, self.store, issued)

    async def _latest_review(self, hazard_id: uuid.UUID) -> tuple[HazardEvent, User]:
        query = (
            select(HazardEvent, User)
            .join(User, col(User.id) == col(HazardEvent.actor_id))
            .where(col(HazardEvent.hazard_id) == hazard_id, col(HazardEvent.action).in_(REVIEWS))
            .order_by(col(HazardEvent.at).desc(), col(HazardEvent.id).desc())
        )
        row = (await self.session.execute(query.limit(1))).first()
        if row is None:
            raise Conflict("the hazard's rectification has not been reviewed yet", code=ErrorCode.DOCUMENT_UNAVAILABLE)
        review, reviewer = row
        if reviewer.role != Role.inspector or reviewer.agency_id is None:
            raise Conflict(
                "the enterprise accepted its own self-found hazard: there was no review by the agency to give an opinion on",
                code=ErrorCode.DOCUMENT_UNAVAILABLE,
            )
        return review, reviewer

    async def _issue(self, hazard: Hazard, review: HazardEvent, reviewer: User) -> IssuedDocument:
        assert reviewer.agency_id is not None
        content = await numbered_content(self.session, REVIEW_OPINION, reviewer.agency_id, hazard.enterprise_id)
        await self._fill(content, hazard, review, reviewer)
        issued = await issue(self.session, content, issued_by=reviewer.id, hazard_id=hazard.id, hazard_event_id=review.id)
        audit.record(
            self.session,
            self.actor,
            "hazard.document",
            "hazard",
            hazard.id,
            {"type": REVIEW_OPINION, "number": issued.number, "sha256": issued.sha256, "review": str(review.id)},
        )
        return issued

    async def _fill(self, content: DocumentContent, hazard: Hazard, review: HazardEvent, reviewer: User) -> None:
        proof = (
            await self.session.execute(
                select(HazardEvent)
                .where(
                    col(HazardEvent.hazard_id) == hazard.id,
                    col(HazardEvent.action) == "rectification_submitted",
                    col(HazardEvent.at) <= review.at,
                )
                .order_by(col(HazardEvent.at).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        accepted = review.action == "accepted"
        content.lines += [
            ("复查时间", chinese_date(review.at)),
            ("复查人员", f"{reviewer.display_name}（{reviewer.certificate_no or '—'}）"),
        ]
        found = f"{hazard.description}（{'重大' if hazard.level == HazardLevel.major else '一般'}事故隐患"
        found += f"；检查项：{hazard.item_text}）" if hazard.item_text else "）"
        content.sections = [
            ("复查事项：", [found, f"整改期限：{chinese_date(hazard.deadline)}" if hazard.deadline else "整改期限：—"]),
            (
                "整改情况：",
                [f"{chinese_date(proof.at)}报告：{proof.note or (proof.data or {}).get('description') or '—'}"] if proof else ["—"],
            ),
            (
                "复查意见：",
                [
                    "依据《中华人民共和国安全生产法》第六十五条，对你单位上述事故隐患的整改情况进行了复查。",
                    "经复查，上述事故隐患已整改完毕。" if accepted else "经复查，上述事故隐患整改不符合要求，你单位应当继续整改。",
                    review.note or (review.data or {}).get("opinion") or "",
                ],
            ),
        ]
