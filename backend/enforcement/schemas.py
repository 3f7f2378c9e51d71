"""What crosses the wire for enforcement cases, records, decisions, reviews, documents and the discretion table."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from backend.accounts.schemas import Location
from backend.vocabulary import CaseStatus, MeasureType
from backend.wire import DEADLINE_RANGE, INSTANT_RANGE, ActionIn, Deadline, Input, Instant, Line, Output
from backend.workflow import TimelineEntryOut

RecordKind = Literal["notice", "onsite_check", "feedback", "interview", "sampling", "measure", "delivery", "note"]
# 行政处罚法 第五十八条 (一)–(四): grounds on which the handler marks a decision major
MajorGround = Literal["public_interest", "major_rights_after_hearing", "complex_case", "required_by_law"]
DocumentType = Literal["inspection_record", "rectification_order", "penalty_decision"]


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
    kind: RecordKind
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


class MeasureIn(Input):
    type: MeasureType
    amount: int | None = Field(default=None, ge=0, le=10**12, description="yuan")
    basis_id: Line = Field(min_length=1, max_length=40, description="a discretion table entry")


class DecisionIn(ActionIn):
    measures: list[MeasureIn] = Field(min_length=1, max_length=10)
    facts: str = Field(min_length=1, max_length=20000)
    reasoning: str = Field(min_length=1, max_length=20000)
    major: bool = Field(default=False, description="the handler marks the decision major (重大执法决定)")
    major_grounds: list[MajorGround] = Field(default_factory=list, description="行政处罚法 第五十八条 grounds")


class MeasureOut(Output):
    type: MeasureType
    amount: int | None
    basis_id: str
    basis: DiscretionItem
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
    number: str
    sha256: str
    size: int
    issued_at: datetime


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
    updated_at: datetime


class CaseOut(CaseSummary):
    handler_ids: list[uuid.UUID]
    head_hash: str
    decision: DecisionOut | None
    reviews: list[LegalReviewOut]
    history: list[TimelineEntryOut]
    documents: list[DocumentOut]


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
