"""Enforcement cases: who may act on one, opening (立案), the workflow, and reading. The full-process record is in
records.py, decisions and legal review in decisions.py, documents in issuing.py, publication in publication.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import scope
from backend.accounts.models import Agency, Enterprise
from backend.audit import Actor
from backend.clock import now
from backend.enforcement.discretion import discretion_table
from backend.enforcement.models import (
    DEADLINE_COLUMNS,
    GENESIS_HASH,
    Case,
    CaseDelivery,
    CaseEvent,
    CaseHandler,
    CaseStatement,
    CaseStatementReply,
    Decision,
    IssuedDocument,
    LegalReview,
    pending_clause,
)
from backend.enforcement.penalties import hearing_grounds, load_procedure, target_key
from backend.enforcement.register import issued_for
from backend.enforcement.schemas import (
    ApprovalOut,
    CaseIn,
    CaseOut,
    CaseSummary,
    DecisionOut,
    DeliveryOut,
    DiscussionOut,
    DocumentOut,
    EvidenceRef,
    HearingOut,
    LegalReviewOut,
    MeasureOut,
    PaymentOut,
    ReplyOut,
    StatementOut,
    TargetOut,
)
from backend.errors import ErrorCode, Forbidden, ValidationFailed
from backend.idempotency import ensure_same, find_retry, fingerprint
from backend.inspections.models import Inspection
from backend.integration.outbox import EventName
from backend.pagination import Page, keyset, page_of
from backend.settings import Settings
from backend.storage import ObjectStore
from backend.sync.service import register_serializer
from backend.unit_of_work import concurrent_change, flush, insert_once, track
from backend.vocabulary import CaseStatus, OverdueStep, Role, TargetKind
from backend.wire import ActionIn
from backend.workflow import ActionRequest, Move, TimelineEntry, TimelineEntryOut, Workflow

INSPECTOR, LEGAL, LEADER = frozenset({Role.inspector}), frozenset({Role.legal_reviewer}), frozenset({Role.leader})
PARTY = frozenset({Role.inspector, Role.enterprise})  # the enterprise's own user, or a handler recording it
HOST = frozenset({Role.inspector, Role.legal_reviewer, Role.leader})  # 听证主持人: agency staff, never a handler
C = CaseStatus
DRAFTS = {"decision_drafted": Move(C.decision_draft, INSPECTOR), "major_decision_drafted": Move(C.legal_review, INSPECTOR)}
# 陈述、申辩 and 复核 (行政处罚法 第四十五条): steps that leave the status as it is
STATEMENTS = {"statement_made": Move(C.notified, PARTY), "statement_answered": Move(C.notified, INSPECTOR)}
# 集体讨论 (第五十七条第二款) and the leader's approval of the draft: steps that leave the status as it is
LEADERS = {"collective_discussion": Move(C.notified, LEADER), "leader_approved": Move(C.notified, LEADER)}


def _stay(status: CaseStatus, steps: dict[str, Move]) -> dict[str, Move]:
    """`steps` as moves from `status` to itself."""
    return {action: Move(status, move.roles) for action, move in steps.items()}


def _extend_in(status: CaseStatus) -> dict[str, Move]:
    return {"time_limit_extended": Move(status, INSPECTOR)}  # 行政处罚法 第六十条: an approved extension


def _before_decision(status: CaseStatus, **moves: Move) -> dict[str, Move]:
    """Moves of a status before the decision: its own, plus recording an extension of the 90-day limit."""
    return {**moves, **_extend_in(status)}


def _party_heard(status: CaseStatus) -> dict[str, Move]:
    """What the party and the handlers may do while the party is being heard (after 告知, before the decision)."""
    return {**_stay(status, STATEMENTS), "delivery_recorded": Move(status, INSPECTOR)}


# The whole procedure, as data. Every status change goes through CASE_WORKFLOW.transition().
CASE_WORKFLOW = Workflow(
    "case",
    CaseEvent,
    "case_id",
    {
        C.open: _before_decision(C.open, **DRAFTS),
        C.decision_draft: _before_decision(C.decision_draft, **DRAFTS, notified=Move(C.notified, INSPECTOR)),  # 告知
        # 法制审核
        C.legal_review: _before_decision(C.legal_review, approved=Move(C.approved, LEGAL), returned=Move(C.decision_draft, LEGAL)),
        C.approved: _before_decision(C.approved, **DRAFTS, **_stay(C.approved, LEADERS), notified=Move(C.notified, INSPECTOR)),
        C.notified: _before_decision(
            C.notified,
            **DRAFTS,  # the statement changed the facts: a new draft, reviewed as before
            **_party_heard(C.notified),
            **LEADERS,
            hearing_requested=Move(C.hearing_requested, PARTY),
            decided=Move(C.decided, INSPECTOR),
        ),
        C.hearing_requested: _before_decision(
            C.hearing_requested, **_party_heard(C.hearing_requested), hearing_scheduled=Move(C.hearing_scheduled, INSPECTOR)
        ),
        C.hearing_scheduled: _before_decision(C.hearing_scheduled, **_party_heard(C.hearing_scheduled), hearing_held=Move(C.heard, HOST)),
        C.heard: _before_decision(
            C.heard, **DRAFTS, **_party_heard(C.heard), **_stay(C.heard, LEADERS), decided=Move(C.decided, INSPECTOR)
        ),
        C.decided: {
            "delivery_recorded": Move(C.decided, INSPECTOR),
            "delivered": Move(C.delivered, INSPECTOR),  # 送达: the last decision delivered
            "payment_recorded": Move(C.decided, INSPECTOR),
            "closed_for_court": Move(C.closed, LEADER),  # 结案: execution passed to a court
        },
        C.delivered: {
            "payment_recorded": Move(C.delivered, INSPECTOR),
            "executed": Move(C.executed, INSPECTOR),  # 执行完毕: every fine and surcharge paid
            "closed_for_court": Move(C.closed, LEADER),
        },
        C.executed: {"closed": Move(C.closed, LEADER)},  # 结案
        C.closed: {},
    },
    events={"decided": EventName.case_decided},
    event_data=lambda case: case_summary(case).model_dump(mode="json"),
)
DECISION_TIME_LIMIT = timedelta(days=90)  # 行政处罚法 第六十条: 自立案之日起九十日内作出行政处罚决定


def _case_feed(session: Any, case: Case) -> tuple[uuid.UUID | None, str | None]:
    """A case is seen by its enterprise and by the staff of the agency that handles it (and that agency's parents)."""
    return case.enterprise_id, session.execute(select(col(Agency.path)).where(col(Agency.id) == case.agency_id)).scalar_one()


track(Case, "case", feed=_case_feed)


def measure_out(measure: dict[str, Any], enterprise_name: str) -> MeasureOut:
    basis = discretion_table()[measure["basis_id"]]
    position = None
    if measure.get("amount") is not None and basis.max_amount is not None:
        low, high = basis.min_amount or 0, basis.max_amount
        position = round((measure["amount"] - low) / (high - low), 4) if high > low else 1.0
    target = measure.get("target") or {"kind": TargetKind.enterprise, "name": enterprise_name}
    return MeasureOut(
        type=measure["type"],
        amount=measure.get("amount"),
        basis_id=measure["basis_id"],
        basis=basis,
        position_in_range=position,
        target=TargetOut.model_validate(target),
        target_key=target_key(measure),
    )


def decision_out(decision: Decision, status: str, enterprise_name: str, settings: Settings) -> DecisionOut:
    return DecisionOut(
        id=decision.id,
        case_id=decision.case_id,
        status=CaseStatus(status),
        measures=[measure_out(m, enterprise_name) for m in decision.measures],
        facts=decision.facts,
        reasoning=decision.reasoning,
        major=decision.major,
        major_reasons=decision.major_reasons,
        hearing_grounds=hearing_grounds(decision.measures, settings),
        created_at=decision.created_at,
    )


class CaseAccess:
    """What every case service shares: the case as the caller may see it, and who handles it."""

    def __init__(self, session: AsyncSession, actor: Actor, store: ObjectStore, settings: Settings) -> None:
        self.session = session
        self.actor = actor
        self.store = store
        self.settings = settings

    async def _case(self, case_id: uuid.UUID, *, lock: bool = False) -> Case:
        return await scope.one(self.session, self.actor, Case, case_id, lock=lock)

    async def _handler_ids(self, case_id: uuid.UUID) -> set[uuid.UUID]:
        return set((await self.session.execute(select(col(CaseHandler.user_id)).where(col(CaseHandler.case_id) == case_id))).scalars())

    async def _as_handler(self, case_id: uuid.UUID) -> Case:
        case = await self._case(case_id, lock=True)
        if self.actor.user_id not in await self._handler_ids(case_id):
            raise Forbidden("only the case's handlers act on it", code=ErrorCode.NOT_A_HANDLER)
        return case

    async def _step(self, case: Case, operation: str, body: ActionIn | None) -> tuple[ActionRequest, TimelineEntry | None]:
        """This request's identity, and the step an earlier send of it already took on the case, if any."""
        request = ActionRequest.of(operation, body)
        return request, await CASE_WORKFLOW.replayed(self.session, case, self.actor, request)

    async def _move(self, case: Case, action: str, request: ActionRequest | None, note: str | None, data: dict[str, Any]) -> None:
        CASE_WORKFLOW.transition(self.session, case, action, self.actor, note=note, data=data, request=request)
        await flush(self.session)

    async def _earlier(self, model: Any, row_id: uuid.UUID, case_id: uuid.UUID, digest: str) -> Any | None:
        """The row an earlier send of this create (same client id) made on this case; the id taken by other content or
        on another case is `409 duplicate_conflict`."""
        existing = await self.session.get(model, row_id)
        if existing is not None:
            ensure_same(existing.client_fingerprint if existing.case_id == case_id else None, digest, model.__tablename__, row_id)
        return existing

    async def _latest_decision(self, case_id: uuid.UUID) -> Decision | None:
        query = select(Decision).where(col(Decision.case_id) == case_id).order_by(col(Decision.created_at).desc(), col(Decision.id).desc())
        return (await self.session.execute(query.limit(1))).scalar_one_or_none()


class CaseService(CaseAccess):
    async def create(self, data: CaseIn) -> tuple[Case, bool]:
        assert self.actor.user_id is not None and self.actor.agency_id is not None  # only an inspector (guarded) opens a case
        case_id = data.id or uuid.uuid4()
        handler_ids = sorted(set(data.handler_ids) | {self.actor.user_id})
        content = {
            "enterprise_id": data.enterprise_id,
            "inspection_id": data.inspection_id,
            "title": data.title,
            "handler_ids": handler_ids,
        }
        digest = fingerprint(content)
        existing = await find_retry(self.session, scope.readable(self.actor, Case), Case, case_id, digest)
        if existing is not None:
            return existing, False
        enterprise = await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        if data.inspection_id is not None:
            await scope.one(
                self.session,
                self.actor,
                Inspection,
                data.inspection_id,
                field="inspection_id",
                where=[Inspection.enterprise_id == enterprise.id],
            )
        handlers = await scope.supervising_officers(
            self.session, handler_ids, enterprise.id, field="handler_ids", certified_at_least=scope.MIN_OFFICERS
        )
        uncertified = [str(u.id) for u in handlers if not u.certificate_no]
        if uncertified:
            raise ValidationFailed(
                f"every handler holds an enforcement certificate: {uncertified}", code=ErrorCode.INSPECTOR_NOT_ELIGIBLE, field="handler_ids"
            )
        at = now()
        case = Case(
            id=case_id,
            enterprise_id=enterprise.id,
            agency_id=self.actor.agency_id,
            inspection_id=data.inspection_id,
            title=data.title,
            status=C.open,
            opened_at=at,
            decide_by=at + DECISION_TIME_LIMIT,
            record_count=0,
            head_hash=GENESIS_HASH,
            client_fingerprint=digest,
            created_by=self.actor.user_id,
            created_at=at,
            updated_at=at,
        )
        created = await insert_once(
            self.session,
            case,
            *CASE_WORKFLOW.creation_rows(case, self.actor, data.title, content, action="opened"),  # 立案
            *[CaseHandler(case_id=case_id, user_id=u.id, certificate_no=u.certificate_no or "") for u in handlers],
        )
        if not created:
            existing = await find_retry(self.session, scope.readable(self.actor, Case), Case, case_id, digest)
            if existing is None:
                raise concurrent_change()
            return existing, False
        return case, True

    async def list(
        self,
        *,
        status: CaseStatus | None,
        enterprise_id: uuid.UUID | None,
        awaiting_my_review: bool,
        handled_by_me: bool,
        cursor: str | None,
        limit: int,
        overdue_step: OverdueStep | None = None,
    ) -> Page[CaseSummary]:
        query = scope.readable(self.actor, Case)
        mine = exists().where(col(CaseHandler.case_id) == col(Case.id), col(CaseHandler.user_id) == self.actor.user_id)
        if status:
            query = query.where(col(Case.status) == status)
        if enterprise_id:
            query = query.where(col(Case.enterprise_id) == enterprise_id)
        if awaiting_my_review:  # 待审核: major drafts this reviewer may review (never a case they handle)
            query = query.where(col(Case.status) == C.legal_review, ~mine)
        if handled_by_me:
            query = query.where(mine)
        if overdue_step:  # the step still to be taken (the partial index's predicate) and its day passed
            due = getattr(Case, DEADLINE_COLUMNS[overdue_step][0])
            query = query.where(text(pending_clause(overdue_step)), col(due) < now())
        rows = list((await self.session.execute(keyset(query, Case.created_at, Case.id, cursor, limit))).scalars())
        return page_of(rows, limit, case_summary)

    async def detail(self, case_id: uuid.UUID) -> CaseOut:
        case = await self._case(case_id)
        decision = await self._latest_decision(case_id)
        reviews = (
            await self.session.execute(select(LegalReview).where(col(LegalReview.case_id) == case_id).order_by(col(LegalReview.created_at)))
        ).scalars()
        events = (
            await self.session.execute(select(CaseEvent).where(col(CaseEvent.case_id) == case_id).order_by(col(CaseEvent.at)))
        ).scalars()
        documents = (
            await self.session.execute(select(IssuedDocument).where(issued_for(case)).order_by(col(IssuedDocument.issued_at)))
        ).scalars()
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        assert enterprise is not None
        procedure = await load_procedure(self.session, case, decision)
        at = now()
        accounts = procedure.fine_accounts(at)
        return CaseOut(
            **dict(case_summary(case)),
            handler_ids=sorted(await self._handler_ids(case_id)),
            head_hash=case.head_hash,
            decision=decision_out(decision, case.status, enterprise.name, self.settings) if decision else None,
            reviews=[LegalReviewOut.model_validate(r, from_attributes=True) for r in reviews],
            history=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in events],
            documents=[DocumentOut.model_validate(d, from_attributes=True) for d in documents],
            deadlines=procedure.deadlines(at),
            surcharge=sum(a.surcharge for a in accounts),
            fines=accounts,
            statements=[statement_out(s, procedure.replies.get(s.id)) for s in procedure.statements],
            hearing=HearingOut.model_validate(procedure.hearing, from_attributes=True) if procedure.hearing else None,
            discussions=[DiscussionOut.model_validate(d, from_attributes=True) for d in procedure.discussions],
            approvals=[ApprovalOut.model_validate(a, from_attributes=True) for a in procedure.approvals],
            deliveries=[delivery_out(d) for d in procedure.deliveries],
            payments=[PaymentOut.model_validate(p, from_attributes=True) for p in procedure.payments],
        )

    async def decision_view(self, decision: Decision) -> DecisionOut:
        case = await self._case(decision.case_id)
        enterprise = await self.session.get(Enterprise, case.enterprise_id)
        assert enterprise is not None
        return decision_out(decision, case.status, enterprise.name, self.settings)


def statement_out(statement: CaseStatement, reply: CaseStatementReply | None) -> StatementOut:
    return StatementOut(
        **{k: getattr(statement, k) for k in StatementOut.model_fields if k not in ("evidence", "reply")},
        evidence=[EvidenceRef.model_validate(e) for e in statement.evidence],
        reply=ReplyOut.model_validate(reply, from_attributes=True) if reply else None,
    )


def delivery_out(delivery: CaseDelivery) -> DeliveryOut:
    return DeliveryOut(
        **{k: getattr(delivery, k) for k in DeliveryOut.model_fields if k not in ("evidence", "document")},
        document=delivery.document_type,
        evidence=[EvidenceRef.model_validate(e) for e in delivery.evidence],
    )


def case_summary(case: Case) -> CaseSummary:
    return CaseSummary.model_validate(case, from_attributes=True)


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = (await session.execute(select(Case).where(col(Case.id).in_([uuid.UUID(i) for i in ids])))).scalars()
    return {str(c.id): case_summary(c).model_dump(mode="json") for c in rows}


register_serializer("case", _serialize)
