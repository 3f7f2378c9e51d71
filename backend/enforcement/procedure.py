"""The penalty procedure from the draft decision to 结案 (行政处罚法 2021): 告知 (第四十四条), 陈述、申辩 and 复核
(第四十五条), 听证 (第六十三、六十四条), 集体讨论 (第五十七条), the leader's approval, 送达 (第六十一条), payment
and 加处罚款 (第六十七、七十二条), and closing.

Every step locks the case, is checked against CASE_WORKFLOW (a step out of order is `409 invalid_transition` and
changes nothing), writes the timeline and the audit log through `transition()`, and, where the law makes it part of
the record, appends to the case's hash chain. Deadlines are computed in the agencies' zone, the statute's short
periods in working days (第八十五条)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend import scope
from backend.accounts.models import Agency, User
from backend.clock import end_of_local_day, local_date, now, working_day_after, working_days_after
from backend.enforcement.issuing import DocumentIssuer
from backend.enforcement.models import (
    Case,
    CaseApproval,
    CaseDelivery,
    CaseDiscussion,
    CaseHearing,
    CasePayment,
    CaseStatement,
    CaseStatementReply,
    Decision,
    LegalReview,
)
from backend.enforcement.penalties import Procedure, fines_by_target, hearing_grounds, load_procedure
from backend.enforcement.records import RecordService
from backend.enforcement.schemas import (
    ApproveIn,
    CloseIn,
    DeliveryIn,
    DiscussionIn,
    HearingIn,
    HearingRecordIn,
    HearingRequestIn,
    PaymentIn,
    ReplyIn,
    StatementIn,
)
from backend.enforcement.service import CASE_WORKFLOW, CaseAccess
from backend.errors import Conflict, ErrorCode, Forbidden, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.idempotency import fingerprint
from backend.unit_of_work import flush
from backend.vocabulary import AGENCY_STAFF, CaseStatus, EvidenceStatus, Role
from backend.wire import ActionIn

C = CaseStatus
HEARING_REQUEST_DAYS = 5  # 行政处罚法 第六十四条(一): 告知后五日内提出 (working days, 第八十五条)
HEARING_NOTICE_DAYS = 7  # 第六十四条(二): 举行听证的七日前通知
DELIVERY_DAYS = 7  # 第六十一条: 七日内送达
PAYMENT_DAYS = 15  # 第六十七条第三款: 收到行政处罚决定书之日起十五日内缴纳 (calendar days: not in 第八十五条)


class ProcedureService(CaseAccess):
    # --- who acts ---------------------------------------------------------------------------------------------

    async def _as_party(self, case_id: uuid.UUID) -> Case:
        """The enterprise's own user (scope: another enterprise's user gets 404), or a handler recording it."""
        if self.actor.role == Role.enterprise:
            return await self._case(case_id, lock=True)
        return await self._as_handler(case_id)

    async def _as_leader(self, case_id: uuid.UUID) -> Case:
        case = await self._case(case_id, lock=True)
        if self.actor.user_id in await self._handler_ids(case_id):
            raise Forbidden("a leader never acts on a case they handle", code=ErrorCode.HANDLER_CANNOT_APPROVE)
        return case

    async def _procedure(self, case: Case) -> Procedure:
        return await load_procedure(self.session, case, await self._latest_decision(case.id))

    def _chain(self, case: Case, kind: str, occurred_at: datetime, description: str, evidence: list[dict[str, Any]] | None = None) -> None:
        RecordService(self.session, self.actor, self.store, self.settings).append(
            case,
            kind=kind,
            occurred_at=occurred_at,
            description=description,
            evidence=evidence or [],
            client_fingerprint=fingerprint({"kind": kind, "description": description}),
        )

    async def _evidence(self, case_id: uuid.UUID, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        rows = await scope.many(
            self.session,
            self.actor,
            Evidence,
            ids,
            field="evidence_ids",
            where=[Evidence.case_id == case_id, Evidence.status == EvidenceStatus.stored],
        )
        return [{"id": str(e.id), "sha256": e.sha256} for e in rows]

    def _issuer(self) -> DocumentIssuer:
        return DocumentIssuer(self.session, self.actor, self.store, self.settings)

    # --- 告知 ------------------------------------------------------------------------------------------------------

    async def notify(self, case_id: uuid.UUID, body: ActionIn) -> Case:
        """行政处罚告知书 (第四十四条), and the 听证告知书 when the measures give a hearing right (第六十三条)."""
        case = await self._as_handler(case_id)
        request, earlier = await self._step(case, "notify", body)
        if earlier is not None:
            return case
        decision = await self._latest_decision(case_id)
        if decision is None:
            raise Conflict("draft the decision first", code=ErrorCode.DECISION_REQUIRED)
        if decision.major and case.status == C.decision_draft:
            raise Conflict(
                "a major decision (重大执法决定) is notified after the legal review approved it (行政处罚法 第五十八条)",
                code=ErrorCode.LEGAL_REVIEW_REQUIRED,
            )
        self._check(case, "notified")
        at = now()
        grounds = hearing_grounds(decision.measures, self.settings)
        case.notified_at, case.hearing_right = at, bool(grounds)
        case.statement_due, case.statement_met_at = working_days_after(at, self.settings.statement_days), None
        case.hearing_request_due = working_days_after(at, HEARING_REQUEST_DAYS) if grounds else None
        case.hearing_request_met_at = None
        issuer = self._issuer()
        notice = await issuer.issue(case, "penalty_notice")
        numbers = [notice.number]
        if grounds:
            numbers.append((await issuer.issue(case, "hearing_notice")).number)
        data = {"decision_id": decision.id, "statement_due": case.statement_due, "hearing_grounds": grounds, "documents": numbers}
        await self._move(case, "notified", request, None, data)
        return case

    def _check(self, case: Case, action: str) -> None:
        CASE_WORKFLOW.check(case.status, action, self.actor.role)

    # --- 陈述、申辩 and 复核 ------------------------------------------------------------------------------------

    async def statement(self, case_id: uuid.UUID, data: StatementIn) -> tuple[CaseStatement, bool]:
        statement_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {
                "content": data.content,
                "evidence_ids": sorted(str(e) for e in data.evidence_ids),
                "received_at": data.received_at,
                "waived": data.waived,
            }
        )
        case = await self._as_party(case_id)
        existing = await self._earlier(CaseStatement, statement_id, case_id, digest)
        if existing is not None:
            return existing, False
        self._check(case, "statement_made")
        evidence = await self._evidence(case_id, data.evidence_ids)
        at = now()
        received = data.received_at or at
        assert self.actor.user_id is not None
        statement = CaseStatement(
            id=statement_id,
            case_id=case_id,
            content=data.content,
            evidence=evidence,
            received_at=received,
            waived=data.waived,
            by_party=self.actor.role == Role.enterprise,
            submitted_by=self.actor.user_id,
            client_fingerprint=digest,
            created_at=at,
        )
        self.session.add(statement)
        case.statement_met_at = case.statement_met_at or received
        if data.waived and case.hearing_right:
            case.hearing_request_met_at = case.hearing_request_met_at or received
        what = "当事人书面放弃陈述、申辩和听证权利" if data.waived else "当事人陈述、申辩"
        self._chain(case, "statement", received, f"{what}：{data.content}", evidence)
        await self._move(case, "statement_made", None, None, {"statement_id": statement_id, "waived": data.waived})
        return statement, True

    async def reply(self, case_id: uuid.UUID, statement_id: uuid.UUID, data: ReplyIn) -> CaseStatementReply:
        case = await self._as_handler(case_id)
        statement = await self.session.get(CaseStatement, statement_id)
        if statement is None or statement.case_id != case_id:
            raise NotFound(f"statement {statement_id} not found", code=ErrorCode.NOT_FOUND)
        request, earlier = await self._step(case, f"reply:{statement_id}", data)
        existing = (
            await self.session.execute(select(CaseStatementReply).where(col(CaseStatementReply.statement_id) == statement_id))
        ).scalar_one_or_none()
        if earlier is not None and existing is not None:
            return existing
        if existing is not None:
            raise Conflict("this statement has been answered already", code=ErrorCode.INVALID_TRANSITION, action="statement_answered")
        if statement.waived:
            raise Conflict("a waiver needs no reply", code=ErrorCode.INVALID_TRANSITION, action="statement_answered")
        self._check(case, "statement_answered")
        assert self.actor.user_id is not None
        reply = CaseStatementReply(
            statement_id=statement_id, case_id=case_id, adopted=data.adopted, reasoning=data.reasoning, replied_by=self.actor.user_id
        )
        self.session.add(reply)
        verdict = "采纳" if data.adopted else "不予采纳"
        self._chain(case, "reply", now(), f"复核当事人陈述、申辩（{verdict}）：{data.reasoning}")
        await self._move(case, "statement_answered", request, data.reasoning, {"statement_id": statement_id, "adopted": data.adopted})
        return reply

    # --- 听证 -------------------------------------------------------------------------------------------------------

    async def hearing_request(self, case_id: uuid.UUID, data: HearingRequestIn) -> Case:
        case = await self._as_party(case_id)
        request, earlier = await self._step(case, "hearing_request", data)
        if earlier is not None:
            return case
        self._check(case, "hearing_requested")
        if not case.hearing_right:
            raise Conflict("the decision's measures give no right to a hearing (行政处罚法 第六十三条)", code=ErrorCode.NO_HEARING_RIGHT)
        requested = data.requested_at or now()
        assert case.hearing_request_due is not None  # set with the hearing right at 告知
        if requested > case.hearing_request_due:
            raise Conflict(
                f"a hearing is requested within {HEARING_REQUEST_DAYS} working days of the notice (行政处罚法 第六十四条); "
                f"the period ended {case.hearing_request_due.isoformat()}",
                code=ErrorCode.HEARING_REQUEST_LATE,
            )
        case.hearing_request_met_at = requested
        self._chain(case, "hearing", requested, "当事人要求举行听证")
        await self._move(case, "hearing_requested", request, None, {"requested_at": requested})
        return case

    async def schedule_hearing(self, case_id: uuid.UUID, data: HearingIn) -> Case:
        case = await self._as_handler(case_id)
        request, earlier = await self._step(case, "hearing", data)
        if earlier is not None:
            return case
        self._check(case, "hearing_scheduled")
        at = now()
        earliest = working_day_after(at, HEARING_NOTICE_DAYS)
        if local_date(data.scheduled_at) < earliest:
            raise ValidationFailed(
                f"the party is told at least {HEARING_NOTICE_DAYS} working days before the hearing (行政处罚法 第六十四条): "
                f"hold it on {earliest.isoformat()} or later",
                code=ErrorCode.HEARING_NOTICE_TOO_SHORT,
                field="scheduled_at",
            )
        handlers = await self._handler_ids(case_id)
        case_path = (await self.session.execute(select(col(Agency.path)).where(col(Agency.id) == case.agency_id))).scalar_one()
        for field, user_id in (("host_id", data.host_id), ("clerk_id", data.clerk_id)):
            if user_id is None:
                continue
            # someone who may see the case: staff of its agency or of an agency above it, as for its legal review
            found = (
                await self.session.execute(
                    select(User, col(Agency.path)).join(Agency, col(Agency.id) == col(User.agency_id)).where(col(User.id) == user_id)
                )
            ).first()
            if found is None or found[0].role not in AGENCY_STAFF or not found[0].is_active or not case_path.startswith(found[1]):
                raise scope.missing(User, [user_id], field)
        if data.host_id in handlers:
            raise ValidationFailed(
                "the hearing is hosted by someone who did not investigate the case (行政处罚法 第六十四条(四))",
                code=ErrorCode.HOST_IS_INVESTIGATOR,
                field="host_id",
            )
        assert self.actor.user_id is not None
        hearing = CaseHearing(
            case_id=case_id,
            scheduled_at=data.scheduled_at,
            place=data.place,
            host_id=data.host_id,
            clerk_id=data.clerk_id,
            scheduled_by=self.actor.user_id,
            created_at=at,
        )
        self.session.add(hearing)
        self._chain(case, "hearing", at, f"通知当事人听证：{data.scheduled_at.isoformat()}，地点：{data.place}")
        await self._move(case, "hearing_scheduled", request, None, {"hearing_id": hearing.id, "scheduled_at": data.scheduled_at})
        return case

    async def record_hearing(self, case_id: uuid.UUID, data: HearingRecordIn) -> Case:
        """听证笔录, by the host (第六十四条(八)); issues the hearing_record document."""
        case = await self._case(case_id, lock=True)
        request, earlier = await self._step(case, "hearing_record", data)
        if earlier is not None:
            return case
        self._check(case, "hearing_held")
        hearing = (await self._procedure(case)).hearing
        assert hearing is not None  # a case in hearing_scheduled has its hearing
        if hearing.host_id != self.actor.user_id:
            raise Forbidden("only the hearing's host records it", code=ErrorCode.NOT_THE_HOST)
        evidence = await self._evidence(case_id, data.evidence_ids)
        hearing.held_at, hearing.summary = data.held_at, data.summary
        hearing.attendees = [a.model_dump() for a in data.attendees]
        hearing.evidence = evidence
        self.session.add(hearing)
        await flush(self.session)
        document = await self._issuer().issue(case, "hearing_record")
        self._chain(case, "hearing", data.held_at, f"举行听证，听证笔录{document.number}：{data.summary}", evidence)
        await self._move(case, "hearing_held", request, None, {"hearing_id": hearing.id, "held_at": data.held_at})
        return case

    # --- 集体讨论 and the leader's approval ---------------------------------------------------------------------

    async def discussion(self, case_id: uuid.UUID, data: DiscussionIn) -> tuple[CaseDiscussion, bool]:
        case = await self._as_leader(case_id)
        request, earlier = await self._step(case, "collective_discussion", data)
        if earlier is not None:
            found = await self.session.get(CaseDiscussion, uuid.UUID(earlier.data["discussion_id"]))
            assert found is not None
            return found, False
        self._check(case, "collective_discussion")
        decision = await self._latest_decision(case_id)
        assert decision is not None and self.actor.user_id is not None  # a case past the draft has one
        discussion = CaseDiscussion(
            case_id=case_id,
            decision_id=decision.id,
            held_at=data.held_at,
            participants=list(data.participants),
            conclusion=data.conclusion,
            recorded_by=self.actor.user_id,
        )
        self.session.add(discussion)
        self._chain(case, "discussion", data.held_at, f"集体讨论（{'、'.join(data.participants)}）：{data.conclusion}")
        await self._move(
            case, "collective_discussion", request, data.conclusion, {"discussion_id": discussion.id, "decision_id": decision.id}
        )
        return discussion, True

    async def approve(self, case_id: uuid.UUID, data: ApproveIn) -> Case:
        case = await self._as_leader(case_id)
        request, earlier = await self._step(case, "approve", data)
        if earlier is not None:
            return case
        self._check(case, "leader_approved")
        decision = await self._latest_decision(case_id)
        assert decision is not None and self.actor.user_id is not None
        if decision.major:
            await self.require_review_and_discussion(decision)
        approval = CaseApproval(case_id=case_id, decision_id=decision.id, leader_id=self.actor.user_id, opinion=data.opinion)
        self.session.add(approval)
        self._chain(case, "approval", now(), f"行政机关负责人审批：{data.opinion}")
        await self._move(case, "leader_approved", request, data.opinion, {"approval_id": approval.id, "decision_id": decision.id})
        return case

    async def require_review_and_discussion(self, decision: Decision) -> None:
        if not await self._has(LegalReview, decision, LegalReview.outcome == "approve"):
            raise Conflict(
                "a major decision (重大执法决定) needs the legal review's approval first (行政处罚法 第五十八条)",
                code=ErrorCode.LEGAL_REVIEW_REQUIRED,
            )
        if not await self._has(CaseDiscussion, decision):
            raise Conflict(
                "a major decision is discussed collectively by the agency's leaders first (行政处罚法 第五十七条第二款)",
                code=ErrorCode.COLLECTIVE_DISCUSSION_REQUIRED,
            )

    async def _has(self, model: Any, decision: Decision, *where: Any) -> bool:
        query = select(model.id).where(model.decision_id == decision.id, *where).limit(1)
        return (await self.session.execute(query)).first() is not None

    async def check_decidable(self, case: Case, decision: Decision) -> None:
        """What 第六十二条 and 第五十七、五十八条 ask before a decision, beyond the status the workflow checks."""
        procedure = await self._procedure(case)
        unanswered = [str(s.id) for s in procedure.statements if not s.waived and s.id not in procedure.replies]
        if unanswered:
            raise Conflict(
                f"every statement gets a reply (复核, 行政处罚法 第四十五条) before the decision: {unanswered}",
                code=ErrorCode.STATEMENT_UNANSWERED,
            )
        at = now()
        heard = case.status == C.heard
        if not (heard or case.statement_met_at is not None or (case.statement_due is not None and case.statement_due < at)):
            raise Conflict(
                f"the party's statement period runs until {case.statement_due.isoformat() if case.statement_due else '—'}; "
                "decide after it, a statement or a written waiver (行政处罚法 第六十二条)",
                code=ErrorCode.STATEMENT_PERIOD_OPEN,
            )
        due = case.hearing_request_due
        if case.hearing_right and not (heard or case.hearing_request_met_at is not None or (due is not None and due < at)):
            raise Conflict(
                f"the party may request a hearing until {due.isoformat() if due else '—'} (行政处罚法 第六十四条); decide "
                "after it, a hearing or a written waiver",
                code=ErrorCode.HEARING_REQUEST_PERIOD_OPEN,
            )
        if decision.major:
            await self.require_review_and_discussion(decision)
            if not await self._has(CaseApproval, decision):
                raise Conflict(
                    "a major decision needs a leader's approval of this draft (POST /cases/{id}/approve)",
                    code=ErrorCode.LEADER_APPROVAL_REQUIRED,
                )

    # --- 送达 and payment -------------------------------------------------------------------------------------------

    async def delivery(self, case_id: uuid.UUID, data: DeliveryIn) -> tuple[CaseDelivery, bool]:
        delivery_id = data.id or uuid.uuid4()
        digest = fingerprint(
            {k: v for k, v in data.model_dump(mode="json").items() if k != "id"} | {"evidence_ids": sorted(map(str, data.evidence_ids))}
        )
        case = await self._as_handler(case_id)
        existing = await self._earlier(CaseDelivery, delivery_id, case_id, digest)
        if existing is not None:
            return existing, False
        procedure = await self._procedure(case)
        document = await self._issuer().latest(case, data.document, data.target)
        if document is None:
            raise Conflict(f"no {data.document} has been issued for this case yet", code=ErrorCode.DOCUMENT_UNAVAILABLE)
        is_decision = data.document == "penalty_decision"
        issued_on = case.decided_at if is_decision else document.issued_at
        if issued_on is not None and local_date(data.delivered_at) < local_date(issued_on):
            raise ValidationFailed("a document is delivered on or after the day it was issued", field="delivered_at")
        completes = is_decision and procedure.undelivered() == [document.target]
        action = "delivered" if completes else "delivery_recorded"
        self._check(case, action)
        evidence = await self._evidence(case_id, data.evidence_ids)
        late, payment_due = False, None
        if is_decision:
            assert case.decided_at is not None
            late = data.delivered_at > working_days_after(case.decided_at, DELIVERY_DAYS)
            payment_due = end_of_local_day(local_date(data.delivered_at) + timedelta(days=PAYMENT_DAYS))
        assert self.actor.user_id is not None
        delivery = CaseDelivery(
            id=delivery_id,
            case_id=case_id,
            document_type=data.document,
            target=document.target,
            document_number=document.number,
            method=data.method,
            delivered_at=data.delivered_at,
            recipient=data.recipient,
            evidence=evidence,
            late=late,
            payment_due=payment_due,
            recorded_by=self.actor.user_id,
            client_fingerprint=digest,
        )
        self.session.add(delivery)
        procedure.deliveries.append(delivery)
        await flush(self.session)
        receipt = await self._issuer().issue(case, "delivery_receipt", target=document.target, subject=delivery)
        self._chain(
            case,
            "delivery",
            data.delivered_at,
            f"送达《{document.number}》（{data.method}）给{data.recipient}{'，逾期送达' if late else ''}；送达回执{receipt.number}",
            evidence,
        )
        if completes:
            case.delivered_at = max(d.delivered_at for d in procedure.deliveries if d.document_type == "penalty_decision")
        await self._move(case, action, None, None, {"delivery_id": delivery_id, "document": document.number, "late": late})
        await self._settle(case, procedure)
        return delivery, True

    async def payment(self, case_id: uuid.UUID, data: PaymentIn) -> tuple[CasePayment, bool]:
        payment_id = data.id or uuid.uuid4()
        digest = fingerprint({k: v for k, v in data.model_dump(mode="json").items() if k != "id"})
        case = await self._as_handler(case_id)
        existing = await self._earlier(CasePayment, payment_id, case_id, digest)
        if existing is not None:
            return existing, False
        self._check(case, "payment_recorded")
        procedure = await self._procedure(case)
        fined = list(fines_by_target(procedure.decision.measures if procedure.decision else []))
        key = data.target or (fined[0] if len(fined) == 1 else None)
        if key not in fined:
            raise ValidationFailed(f"target: name one of the fined targets {fined}", field="target")
        assert key is not None and self.actor.user_id is not None
        payment = CasePayment(
            id=payment_id,
            case_id=case_id,
            target=key,
            amount=data.amount,
            paid_at=data.paid_at,
            receipt_no=data.receipt_no,
            recorded_by=self.actor.user_id,
            client_fingerprint=digest,
        )
        self.session.add(payment)
        procedure.payments.append(payment)
        self._chain(case, "payment", data.paid_at, f"{key}缴纳罚款{data.amount}元，票据号{data.receipt_no}")
        await self._move(case, "payment_recorded", None, None, {"payment_id": payment_id, "target": key, "amount": data.amount})
        await self._settle(case, procedure)
        return payment, True

    async def _settle(self, case: Case, procedure: Procedure) -> None:
        """Keep the case's payment deadline current, and mark it executed when everything owed is paid."""
        at = now()
        accounts = procedure.fine_accounts(at)
        open_dues = [a.payment_due for a in accounts if a.outstanding > 0 and a.payment_due is not None]
        case.payment_due = min(open_dues) if open_dues else (case.payment_due if case.status == C.decided else None)
        if case.status == C.delivered and all(a.outstanding == 0 for a in accounts):
            case.executed_at = max([p.paid_at for p in procedure.payments] + [case.delivered_at or at])
            paid = {a.target: a.paid for a in accounts}
            await self._move(case, "executed", None, "罚款及加处罚款已缴清" if accounts else "无罚款需缴纳", {"paid": paid})

    # --- 结案 ---------------------------------------------------------------------------------------------------

    async def close(self, case_id: uuid.UUID, data: CloseIn) -> Case:
        case = await self._as_leader(case_id)
        request, earlier = await self._step(case, "close", data)
        if earlier is not None:
            return case
        action = "closed_for_court" if data.court_enforcement else "closed"
        self._check(case, action)
        case.closed_at, case.court_enforcement = now(), data.court_enforcement
        case.payment_due = case.payment_due if data.court_enforcement else None
        document = await self._issuer().issue(case, "closing_report", subject=data)
        reason = "（申请人民法院强制执行）" if data.court_enforcement else ""
        self._chain(case, "closing", case.closed_at, f"结案{reason}，结案审批表{document.number}：{data.summary}")
        await self._move(case, action, request, data.summary, {"court_enforcement": data.court_enforcement, "document": document.number})
        return case
