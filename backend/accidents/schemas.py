"""What crosses the wire for accidents and their rectification look-back (事故整改和防范措施落实情况评估)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, Field

from backend.hazards.schemas import DEADLINE
from backend.vocabulary import AccidentLevel, AccidentStatus, FindingOutcome
from backend.wire import DEADLINE_RANGE, INSTANT_RANGE, ActionIn, Deadline, Input, Instant, Line, Output
from backend.workflow import TimelineEntryOut

APPROVED_AT = (
    "批复日期: a date (that day in the agencies' zone) or an instant with its offset, not in the future; "
    f"{DEADLINE_RANGE}. The evaluation falls due one year later (安全生产法 第八十六条第三款)."
)


class AccidentIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client id; the same create again answers 200 with the first accident")
    enterprise_id: uuid.UUID
    occurred_at: Instant = Field(description=f"when the accident happened, {INSTANT_RANGE}")
    level: AccidentLevel = Field(description="一般 general / 较大 larger / 重大 major / 特别重大 especially_major")
    deaths: int = Field(ge=0, le=100000)
    injuries: int = Field(ge=0, le=100000)
    direct_loss: int = Field(ge=0, le=10**13, description="直接经济损失, yuan")
    summary: str = Field(min_length=1, max_length=8000)


class AccidentMeasureIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client id of the measure")
    text: str = Field(max_length=4000, description="the measure as the report orders it (blank is 422 naming measures[i].text)")
    responsible: Line = Field(min_length=1, max_length=200, description="the unit or person responsible")
    due_at: Deadline | None = Field(default=None, description=DEADLINE)


class ReportIn(ActionIn):
    """事故调查报告的批复 with the 整改和防范措施 it orders."""

    approved_at: date | AwareDatetime = Field(description=APPROVED_AT)
    approved_by: Line = Field(min_length=1, max_length=200, description="批复机关")
    document_no: Line = Field(min_length=1, max_length=100, description="批复文号")
    measures: list[AccidentMeasureIn] = Field(max_length=200, description="at least one (an empty list is 422 naming measures)")
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50, description="the report itself, as documents or photos")


class ProgressIn(ActionIn):
    description: str = Field(min_length=1, max_length=8000)
    evidence_ids: list[uuid.UUID] = Field(min_length=1, max_length=50, description="at least one photo or document of the enterprise")


class EvaluationStartIn(ActionIn):
    started_at: Instant = Field(description=f"when the evaluation began, {INSTANT_RANGE}; not before the approval")


class FindingIn(ActionIn):
    measure_id: uuid.UUID
    outcome: FindingOutcome = Field(description="done 已落实 / partly 部分落实 / not_done 未落实 (opens a hazard)")
    note: str = Field(min_length=1, max_length=8000)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    rectify_days: int = Field(
        default=30, ge=0, le=365, description="for not_done: the days the hazard it opens is given (0: by the end of today)"
    )


class AccountabilityIn(Input):
    unit_or_person: Line = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=4000)


class CompleteIn(ActionIn):
    conclusion: str = Field(min_length=1, max_length=20000)
    accountability: list[AccountabilityIn] = Field(default_factory=list, max_length=100, description="追究责任")


class ProgressOut(Output):
    id: uuid.UUID
    measure_id: uuid.UUID
    description: str
    evidence_ids: list[uuid.UUID]
    by_enterprise: bool
    created_at: datetime


class FindingOut(Output):
    id: uuid.UUID
    measure_id: uuid.UUID
    outcome: FindingOutcome
    note: str
    evidence_ids: list[uuid.UUID]
    hazard_id: uuid.UUID | None = Field(description="the hazard a not_done finding opened (its own workflow takes over)")
    created_at: datetime


class AccidentMeasureOut(Output):
    id: uuid.UUID
    seq: int
    text: str
    responsible: str
    due_at: datetime | None
    outcome: FindingOutcome | None = Field(description="the latest finding's outcome; null until evaluated")
    hazard_id: uuid.UUID | None = Field(description="the hazard opened for it, if it was found not done")
    progress: list[ProgressOut]
    findings: list[FindingOut] = Field(description="every finding, oldest first; the last one counts")


class AccountabilityOut(Output):
    unit_or_person: str
    reason: str


class AccidentOut(Output):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    agency_id: uuid.UUID
    occurred_at: datetime
    level: AccidentLevel
    deaths: int
    injuries: int
    direct_loss: int
    summary: str
    status: AccidentStatus
    approved_at: datetime | None
    approved_by: str | None
    document_no: str | None
    evaluation_due: datetime | None = Field(description="approved_at + 1 year (安全生产法 第八十六条第三款)")
    evaluation_overdue: bool = Field(description="not evaluated and evaluation_due has passed")
    evaluation_window_days: int | None = Field(description="ACCIDENT_EVALUATION_DAYS: days to finish once started")
    evaluation_started_at: datetime | None
    evaluation_finish_by: datetime | None
    evaluated_at: datetime | None
    report_number: str | None = Field(default=None, description="the 评估报告's number once issued")
    created_at: datetime
    updated_at: datetime


class AccidentDetail(AccidentOut):
    report_evidence_ids: list[uuid.UUID]
    measures: list[AccidentMeasureOut]
    conclusion: str | None
    accountability: list[AccountabilityOut]
    timeline: list[TimelineEntryOut]


class PublicMeasureOut(Output):
    seq: int
    text: str
    responsible: str
    outcome: FindingOutcome


class PublicEvaluation(Output):
    """A published 评估报告 (及时向社会公开评估结果): ID numbers and mobile numbers masked, and the names of the
    enterprise's principal and safety manager."""

    report_number: str
    enterprise_name: str
    credit_code: str
    agency_name: str
    level: AccidentLevel
    occurred_at: datetime
    deaths: int
    injuries: int
    direct_loss: int
    approved_by: str
    document_no: str
    approved_at: datetime
    evaluated_at: datetime
    summary: str
    measures: list[PublicMeasureOut]
    conclusion: str
    accountability: list[AccountabilityOut]


class AccidentStatsRow(Output):
    key: str | None = Field(description="the group: a level, status, agency id or enterprise id")
    name: str | None = Field(default=None, description="the agency's or enterprise's name")
    accidents: int
    by_level: dict[str, int]
    by_status: dict[str, int]
    deaths: int
    injuries: int
    direct_loss: int
    evaluations_due_soon: int = Field(description="not evaluated, due within 60 days")
    evaluations_overdue: int = Field(description="not evaluated, past evaluation_due")
    evaluations_completed: int
    findings: dict[str, int] = Field(description="the latest finding of each measure, by outcome")


class AccidentStatsOut(Output):
    group_by: str
    groups: list[AccidentStatsRow]
