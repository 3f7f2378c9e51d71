"""What crosses the wire for enforcement cases, records, decisions, reviews, documents and the discretion table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from backend.accounts.schemas import Location
from backend.vocabulary import CaseStatus, MeasureType, OverdueStep, TargetKind
from backend.wire import DEADLINE_RANGE, INSTANT_RANGE, ActionIn, Deadline, Input, Instant, Line, Output
from backend.workflow import TimelineEntryOut

RecordKind = Literal["notice", "onsite_check", "feedback", "interview", "sampling", "measure", "delivery", "note"]
# 行政处罚法 第五十八条 (一)–(四): grounds on which the handler marks a decision major
MajorGround = Literal["public_interest", "major_rights_after_hearing", "complex_case", "required_by_law"]
# what the procedure itself writes into the chain, besides what handlers record by hand
ProcedureRecordKind = Literal["statement", "reply", "hearing", "discussion", "approval", "decision", "payment", "closing"]
DocumentType = Literal[
    "inspection_record",
    "rectification_order",
    "penalty_notice",
    "hearing_notice",
    "hearing_record",
    "penalty_decision",
    "delivery_receipt",
    "closing_report",
]
# 送达方式: 直接送达、留置送达、邮寄送达、电子送达（当事人同意并签订确认书，行政处罚法第六十一条第二款）、公告送达;
# one list for the deliveries of a case's documents and of an inspection's
DeliveryMethod = Literal["direct", "left", "mail", "electronic", "announcement"]


class CaseIn(Input):
    id: uuid.UUID | None = None
    enterprise_id: uuid.UUID
    inspection_id: uuid.UUID | None = None
    title: Line = Field(min_length=1, max_length=300)
    handler_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=10, description="the handlers besides the caller, who is always one: at least two certified in all"
    )


class RecordIn(Input):
    id: uuid.UUID | None = None
    kind: RecordKind
    occurred_at: Instant = Field(description=f"when it happened, {INSTANT_RANGE}")
    description: str = Field(min_length=1, max_length=20000)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    location: Location | None = None


class EvidenceRef(Output):
    id: uuid.UUID
    sha256: str


class RecordOut(Output):
    id: uuid.UUID
    case_id: uuid.UUID
    seq: int
    kind: RecordKind | ProcedureRecordKind
    occurred_at: datetime
    description: str
    location: Location | None
    evidence: list[EvidenceRef]
    recorded_by: uuid.UUID
    recorded_at: datetime
    prev_hash: str
    hash: str


class VerifyOut(Output):
    valid: bool
    length: int
    head: str
    first_invalid_seq: int | None = None
    problem: str | None = None


class DiscretionItem(Output):
    id: str
    law: str
    article: str
    item: str | None = None
    party: Literal["enterprise", "person"] = "enterprise"
    violation: str
    min_amount: int | None
    max_amount: int | None
    measures: list[MeasureType]
    escalation_of: str | None = None
    notes: str | None = None


class DiscretionOut(Output):
    items: list[DiscretionItem]


class TargetIn(Input):
    """Whom a measure is aimed at (处罚到人); each target gets its own 行政处罚决定书."""

    kind: TargetKind = TargetKind.enterprise
    name: Line = Field(min_length=1, max_length=100, description="the person's name (for the enterprise: its name)")
    id_number: Line | None = Field(default=None, min_length=1, max_length=30, description="居民身份证号码 of a person")
    position: Line | None = Field(default=None, min_length=1, max_length=100, description="a person's position, 如 主要负责人")


class MeasureIn(Input):
    type: MeasureType
    amount: int | None = Field(default=None, ge=0, le=10**12, description="yuan")
    basis_id: Line = Field(min_length=1, max_length=40, description="a discretion table entry")
    target: TargetIn | None = Field(default=None, description="default: the enterprise")


class DecisionIn(ActionIn):
    measures: list[MeasureIn] = Field(min_length=1, max_length=10)
    facts: str = Field(min_length=1, max_length=20000)
    reasoning: str = Field(min_length=1, max_length=20000)
    major: bool = Field(default=False, description="the handler marks the decision major (重大执法决定)")
    major_grounds: list[MajorGround] = Field(default_factory=list, description="行政处罚法 第五十八条 grounds")


class TargetOut(Output):
    kind: TargetKind
    name: str
    id_number: str | None = None
    position: str | None = None


class MeasureOut(Output):
    type: MeasureType
    amount: int | None
    basis_id: str
    basis: DiscretionItem
    target: TargetOut
    target_key: str = Field(description="`enterprise`, or the person's name: the `target` of documents, deliveries and payments")
    position_in_range: float | None = Field(description="where the amount sits in the statutory range: 0 = minimum, 1 = maximum")


class DecisionOut(Output):
    id: uuid.UUID
    case_id: uuid.UUID
    status: CaseStatus
    measures: list[MeasureOut]
    facts: str
    reasoning: str
    major: bool
    major_reasons: list[str]
    hearing_grounds: list[str] = Field(description="why the party may request a hearing (行政处罚法 第六十三条); empty: no hearing right")
    created_at: datetime


class LegalReviewIn(ActionIn):
    decision: Literal["approve", "return"]
    opinion: str = Field(min_length=1, max_length=8000)


class LegalReviewOut(Output):
    id: uuid.UUID
    decision_id: uuid.UUID
    reviewer_id: uuid.UUID
    outcome: str
    opinion: str
    created_at: datetime


class ExtensionIn(ActionIn):
    until: Deadline = Field(description=f"the new last day for the decision, {DEADLINE_RANGE}")
    reason: str = Field(min_length=1, max_length=4000)
    approved_by: Line = Field(min_length=1, max_length=100, description="the agency head who approved it (负责人)")


class DocumentOut(Output):
    type: str
    target: str = ""
    edition: int = 1
    number: str
    sha256: str
    size: int
    issued_at: datetime


class StatementIn(ActionIn):
    content: str = Field(min_length=1, max_length=20000, description="the statement (陈述、申辩), or the written waiver's wording")
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    received_at: Instant | None = Field(default=None, description=f"when a statement on paper was received, {INSTANT_RANGE}")
    waived: bool = Field(default=False, description="the party gives up its statement and hearing rights in writing")


class ReplyIn(ActionIn):
    adopted: bool
    reasoning: str = Field(min_length=1, max_length=20000)


class ReplyOut(Output):
    statement_id: uuid.UUID
    adopted: bool
    reasoning: str
    replied_by: uuid.UUID
    created_at: datetime


class StatementOut(Output):
    id: uuid.UUID
    case_id: uuid.UUID
    content: str
    evidence: list[EvidenceRef]
    received_at: datetime
    waived: bool
    by_party: bool
    submitted_by: uuid.UUID
    created_at: datetime
    reply: ReplyOut | None = None


class HearingRequestIn(ActionIn):
    requested_at: Instant | None = Field(default=None, description=f"when a request on paper was made, {INSTANT_RANGE}")


class HearingIn(ActionIn):
    scheduled_at: AwareDatetime = Field(description="at least seven working days after today (行政处罚法 第六十四条)")
    place: Line = Field(min_length=1, max_length=300)
    host_id: uuid.UUID = Field(description="a staff member of the agency tree who is not one of the case's handlers")
    clerk_id: uuid.UUID | None = None


class Attendee(Input):
    role: Line = Field(min_length=1, max_length=50, description="当事人, 委托代理人, 调查人员, 证人 ...")
    name: Line = Field(min_length=1, max_length=100)


class HearingRecordIn(ActionIn):
    held_at: Instant
    attendees: list[Attendee] = Field(min_length=1, max_length=50)
    summary: str = Field(min_length=1, max_length=50000)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class HearingOut(Output):
    id: uuid.UUID
    scheduled_at: datetime
    place: str
    host_id: uuid.UUID
    clerk_id: uuid.UUID | None
    created_at: datetime
    held_at: datetime | None
    attendees: list[dict[str, str]]
    summary: str | None


class DiscussionIn(ActionIn):
    held_at: Instant
    participants: list[Line] = Field(min_length=2, max_length=50, description="the leaders who discussed it, by name")
    conclusion: str = Field(min_length=1, max_length=20000)


class DiscussionOut(Output):
    id: uuid.UUID
    decision_id: uuid.UUID
    held_at: datetime
    participants: list[str]
    conclusion: str
    recorded_by: uuid.UUID
    created_at: datetime


class ApproveIn(ActionIn):
    opinion: str = Field(default="同意", min_length=1, max_length=8000)


class ApprovalOut(Output):
    id: uuid.UUID
    decision_id: uuid.UUID
    leader_id: uuid.UUID
    opinion: str
    created_at: datetime


class DeliveryIn(Input):
    id: uuid.UUID | None = None
    document: DocumentType = Field(description="the type of the issued document delivered")
    target: Line | None = Field(default=None, max_length=100, description="whose 行政处罚决定书, when a case has several")
    method: DeliveryMethod
    delivered_at: Instant
    recipient: Line = Field(min_length=1, max_length=100)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)


class DeliveryOut(Output):
    id: uuid.UUID
    document: str
    target: str
    document_number: str
    method: str
    delivered_at: datetime
    recipient: str
    evidence: list[EvidenceRef]
    late: bool = Field(description="a decision delivered later than seven working days after it was made (第六十一条)")
    payment_due: datetime | None
    created_at: datetime


class PaymentIn(Input):
    id: uuid.UUID | None = None
    amount: int = Field(ge=1, le=10**12, description="yuan")
    paid_at: Instant
    receipt_no: Line = Field(min_length=1, max_length=100)
    target: Line | None = Field(default=None, max_length=100, description="who paid, when several targets were fined")


class PaymentOut(Output):
    id: uuid.UUID
    target: str
    amount: int
    paid_at: datetime
    receipt_no: str
    created_at: datetime


class CloseIn(ActionIn):
    summary: str = Field(min_length=1, max_length=20000)
    court_enforcement: bool = Field(default=False, description="execution passes to a court (申请人民法院强制执行)")


class DeadlineOut(Output):
    step: OverdueStep
    due_at: datetime
    met_at: datetime | None
    overdue: bool
    target: str | None = None


class FineAccount(Output):
    target: str
    fine: int
    payment_due: datetime | None
    surcharge: int = Field(description="加处罚款: 3% of the fine a day after payment_due, never above the fine (第七十二条)")
    paid: int
    outstanding: int


class CaseSummary(Output):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    agency_id: uuid.UUID
    inspection_id: uuid.UUID | None
    title: str
    status: CaseStatus
    opened_at: datetime
    decide_by: datetime
    record_count: int
    decided_at: datetime | None
    notified_at: datetime | None = None
    statement_due: datetime | None = None
    hearing_right: bool = False
    hearing_request_due: datetime | None = None
    delivery_due: datetime | None = None
    payment_due: datetime | None = None
    executed_at: datetime | None = None
    closed_at: datetime | None = None
    court_enforcement: bool = False
    updated_at: datetime


class CaseOut(CaseSummary):
    handler_ids: list[uuid.UUID]
    head_hash: str
    decision: DecisionOut | None
    reviews: list[LegalReviewOut]
    history: list[TimelineEntryOut]
    documents: list[DocumentOut]
    deadlines: list[DeadlineOut] = Field(default_factory=list)
    surcharge: int = Field(default=0, description="加处罚款 owed now over every target (第七十二条)")
    fines: list[FineAccount] = Field(default_factory=list)
    statements: list[StatementOut] = Field(default_factory=list)
    hearing: HearingOut | None = None
    discussions: list[DiscussionOut] = Field(default_factory=list)
    approvals: list[ApprovalOut] = Field(default_factory=list)
    deliveries: list[DeliveryOut] = Field(default_factory=list)
    payments: list[PaymentOut] = Field(default_factory=list)


class PublicMeasure(Output):
    type: MeasureType
    amount: int | None
    law: str
    article: str


class PublicDecision(Output):
    decision_number: str
    enterprise_name: str
    credit_code: str
    agency_name: str
    decided_at: datetime
    measures: list[PublicMeasure]
    facts: str
    handlers: list[str]
