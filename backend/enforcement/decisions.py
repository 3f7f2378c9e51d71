"""Decisions: drafts checked against the discretion table, 法制审核 of major ones by a reviewer outside the case,
the decision itself within the time limit, and recorded extensions of that limit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend.clock import now, working_days_after
from backend.enforcement.discretion import discretion_table
from backend.enforcement.documents import chinese_date
from backend.enforcement.issuing import DocumentIssuer
from backend.enforcement.models import Case, Decision, LegalReview
from backend.enforcement.penalties import targets_of
from backend.enforcement.procedure import DELIVERY_DAYS, ProcedureService
from backend.enforcement.schemas import DecisionIn, ExtensionIn, LegalReviewIn
from backend.enforcement.service import CASE_WORKFLOW, CaseAccess
from backend.errors import Conflict, ErrorCode, Forbidden, ValidationFailed
from backend.hazards.service import deadline_instant
from backend.vocabulary import CaseStatus, MeasureType, TargetKind

MAJOR_MEASURES = {
    MeasureType.suspend_production: "责令停产停业",
    MeasureType.suspend_license: "暂扣许可证件",
    MeasureType.revoke_license: "吊销许可证件",
    MeasureType.close: "责令关闭",
}
MAJOR_GROUNDS = {
    "public_interest": "涉及重大公共利益（行政处罚法第五十八条第一款第一项）",
    "major_rights_after_hearing": "直接关系当事人或者第三人重大权益，经过听证程序（第五十八条第一款第二项）",
    "complex_case": "案件情况疑难复杂、涉及多个法律关系（第五十八条第一款第三项）",
    "required_by_law": "法律、法规规定应当进行法制审核的其他情形（第五十八条第一款第四项）",
}


class DecisionService(CaseAccess):
    async def draft(self, case_id: uuid.UUID, data: DecisionIn) -> Decision:
        case = await self._as_handler(case_id)
        request, earlier = await self._step(case, "decision", data)
        if earlier is not None:
            return await self._decision(earlier.data["decision_id"])
        measures, reasons = self._checked_measures(data)
        if data.major:
            reasons += [MAJOR_GROUNDS[g] for g in data.major_grounds] or ["承办人认定为重大执法决定"]
        major = bool(reasons)
        action = "major_decision_drafted" if major else "decision_drafted"
        CASE_WORKFLOW.check(case.status, action, self.actor.role)
        assert self.actor.user_id is not None  # only a handler (guarded) drafts a decision
        decision = Decision(
            id=uuid.uuid4(),
            case_id=case_id,
            measures=measures,
            facts=data.facts,
            reasoning=data.reasoning,
            major=major,
            major_reasons=reasons,
            drafted_by=self.actor.user_id,
        )
        self.session.add(decision)
        await self._move(case, action, request, data.reasoning, {"decision_id": decision.id, "major": major, "major_reasons": reasons})
        return decision

    async def _decision(self, decision_id: str) -> Decision:
        decision = await self.session.get(Decision, uuid.UUID(decision_id))
        assert decision is not None
        return decision

    def _checked_measures(self, data: DecisionIn) -> tuple[list[dict[str, Any]], list[str]]:
        table = discretion_table()
        reasons: list[str] = []
        for index, measure in enumerate(data.measures):
            basis = table.get(measure.basis_id)
            if basis is None:
                raise ValidationFailed(
                    f"no discretion entry {measure.basis_id}",
                    code=ErrorCode.UNKNOWN_BASIS,
                    field=f"measures[{index}].basis_id",
                )
            if measure.type not in basis.measures:
                raise ValidationFailed(
                    f"{basis.article}{basis.item or ''} allows {', '.join(basis.measures)}, not {measure.type}",
                    code=ErrorCode.MEASURE_NOT_ALLOWED,
                    field=f"measures[{index}].type",
                )
            kind = measure.target.kind if measure.target else TargetKind.enterprise
            if measure.type in (MeasureType.fine, MeasureType.confiscate) and kind != basis.party:
                raise ValidationFailed(
                    f"{basis.id} fines {'an enterprise' if basis.party == 'enterprise' else 'a person'}; aim the measure at one "
                    f"(处罚到人: the persons' fines have entries of their own)",
                    code=ErrorCode.MEASURE_NOT_ALLOWED,
                    field=f"measures[{index}].target",
                )
            if measure.type in (MeasureType.fine, MeasureType.confiscate) and measure.amount is None:
                raise ValidationFailed("a fine needs its amount in yuan", field=f"measures[{index}].amount")
            if measure.type == MeasureType.fine and measure.amount is not None:
                if basis.max_amount is not None and not (basis.min_amount or 0) <= measure.amount <= basis.max_amount:
                    raise ValidationFailed(
                        f"{measure.amount} yuan lies outside {basis.article}{basis.item or ''}'s range "
                        f"{basis.min_amount or 0}–{basis.max_amount} yuan",
                        code=ErrorCode.OUTSIDE_DISCRETION,
                        field=f"measures[{index}].amount",
                    )
                if measure.amount >= self.settings.major_fine_threshold:
                    reasons.append(f"较大数额罚款：{measure.amount}元，达到{self.settings.major_fine_threshold}元")
            if measure.type in MAJOR_MEASURES:
                reasons.append(MAJOR_MEASURES[measure.type])
        persons: dict[str, str | None] = {}
        for index, measure in enumerate(data.measures):
            person = measure.target if measure.target and measure.target.kind == TargetKind.person else None
            if person and persons.setdefault(person.name, person.id_number) != person.id_number:
                raise ValidationFailed(
                    "two persons of one decision share a name; tell them apart in `name` (each gets a decision of their own)",
                    field=f"measures[{index}].target.name",
                )
        return [m.model_dump(mode="json") for m in data.measures], reasons

    async def legal_review(self, case_id: uuid.UUID, data: LegalReviewIn) -> LegalReview:
        """法制审核 by a legal reviewer of the case's agency tree (scope) who is not one of its handlers."""
        case = await self._case(case_id, lock=True)
        request, earlier = await self._step(case, "legal_review", data)
        if earlier is not None:
            review = await self.session.get(LegalReview, uuid.UUID(earlier.data["review_id"]))
            assert review is not None
            return review
        if self.actor.user_id in await self._handler_ids(case_id):
            raise Forbidden("a handler never reviews their own case", code=ErrorCode.HANDLER_CANNOT_REVIEW)
        action = "approved" if data.decision == "approve" else "returned"
        CASE_WORKFLOW.check(case.status, action, self.actor.role)
        decision = await self._latest_decision(case_id)
        assert decision is not None  # a case in legal_review has a draft
        assert self.actor.user_id is not None  # only a legal reviewer (guarded) reviews
        review = LegalReview(
            id=uuid.uuid4(),
            case_id=case_id,
            decision_id=decision.id,
            reviewer_id=self.actor.user_id,
            outcome=data.decision,
            opinion=data.opinion,
        )
        self.session.add(review)
        await self._move(case, action, request, data.opinion, {"decision_id": decision.id, "review_id": review.id})
        return review

    async def decide(self, case_id: uuid.UUID) -> Case:
        """作出行政处罚决定 (行政处罚法 第五十七条): after 告知 and the party heard, every statement answered, and for a
        major decision the legal review, the collective discussion and a leader's approval; one 行政处罚决定书 per
        target. `decided_at` starts the delivery period (第六十一条)."""
        case = await self._as_handler(case_id)
        request, earlier = await self._step(case, "decide", None)
        if earlier is not None:
            return case
        decision = await self._latest_decision(case_id)
        if decision is None:
            raise Conflict("draft the decision first", code=ErrorCode.DECISION_REQUIRED)
        if decision.major and case.status in (CaseStatus.legal_review, CaseStatus.decision_draft):
            raise Conflict(
                "a major decision (重大执法决定) needs the legal review's approval first (行政处罚法 第五十八条)",
                code=ErrorCode.LEGAL_REVIEW_REQUIRED,
            )
        CASE_WORKFLOW.check(case.status, "decided", self.actor.role)
        procedure = ProcedureService(self.session, self.actor, self.store, self.settings)
        await procedure.check_decidable(case, decision)
        if now() > case.decide_by:
            raise Conflict(
                f"the time limit for a decision ended on {chinese_date(case.decide_by)} (行政处罚法 第六十条); record an extension first",
                code=ErrorCode.DECISION_DEADLINE_PASSED,
            )
        case.decided_at = now()
        case.delivery_due = working_days_after(case.decided_at, DELIVERY_DAYS)
        issuer = DocumentIssuer(self.session, self.actor, self.store, self.settings)
        numbers = [(await issuer.issue(case, "penalty_decision", target=key)).number for key in targets_of(decision.measures)]
        procedure._chain(case, "decision", case.decided_at, f"作出行政处罚决定（{'、'.join(numbers)}）：{decision.reasoning}")
        await self._move(case, "decided", request, None, {"decision_id": decision.id, "documents": numbers})
        return case

    async def extend(self, case_id: uuid.UUID, data: ExtensionIn) -> Case:
        case = await self._as_handler(case_id)
        request, earlier = await self._step(case, "extension", data)
        if earlier is not None:
            return case
        CASE_WORKFLOW.check(case.status, "time_limit_extended", self.actor.role)
        until = deadline_instant(data.until)
        assert until is not None
        if until <= case.decide_by:
            raise ValidationFailed("an extension moves the time limit later", field="until")
        extended = {"from": case.decide_by, "until": until, "approved_by": data.approved_by}
        case.decide_by = until
        await self._move(case, "time_limit_extended", request, data.reason, extended)
        return case


async def latest_decisions(session: Any, case_ids: list[uuid.UUID]) -> dict[uuid.UUID, Decision]:
    rows = (await session.execute(select(Decision).where(col(Decision.case_id).in_(case_ids)).order_by(col(Decision.created_at)))).scalars()
    return {d.case_id: d for d in rows}
