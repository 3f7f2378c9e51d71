"""What crosses the wire for inspections and their results."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from backend.clock import local_today
from backend.enforcement.schemas import DeliveryMethod
from backend.vocabulary import HazardLevel, InspectionKind, InspectionStatus
from backend.wire import INSTANT_MIN, INSTANT_RANGE, Input, Instant, Line, Output

Outcome = Literal["compliant", "hazard", "not_applicable"]
AttendeeRole = Literal["principal", "safety_manager", "operator", "expert", "other"]
# 企业主要负责人、安全管理人员、岗位操作人员 must attend the whole inspection; experts too for 执法+专家.
REQUIRED_ATTENDEES: tuple[AttendeeRole, ...] = ("principal", "safety_manager", "operator")


def _inspection_day(value: date) -> date:
    if not INSTANT_MIN.date() <= value <= local_today() + timedelta(days=1):
        raise ValueError(f"must lie between {INSTANT_MIN.date().isoformat()} and one day from today")
    return value


InspectionDay = Annotated[date, AfterValidator(_inspection_day)]
SiteType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]


class InspectionIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client-generated id; a retry with the same id returns the same inspection")
    enterprise_id: uuid.UUID
    checklist_ids: list[uuid.UUID] = Field(min_length=1, max_length=20, description="published checklist versions")
    inspector_ids: list[uuid.UUID] = Field(min_length=1, max_length=10, description="the team; the caller is always on it")
    kind: InspectionKind
    with_experts: bool = Field(default=False, description="执法+专家: experts attend and are recorded")
    inspection_date: InspectionDay | None = Field(
        default=None,
        description="the day inspected (default: today in the agencies' zone); every checklist must be the version in "
        "force that day (`422 checklist_not_in_force` naming `checklist_ids`)",
    )
    task_id: uuid.UUID | None = Field(
        default=None,
        description="the task (GET /tasks) this inspection carries out: of its enterprise, by its drawn inspectors "
        "(else `422 task_mismatch`); opening moves the task to in_progress, submitting marks it done",
    )
    site_types: list[SiteType] = Field(
        default_factory=list,
        max_length=10,
        description="what kind of site this is for the comprehensive judgement (综合判定), e.g. `crowded_place` "
        "(人员密集场所): a `site_type` of the checklists' `combination_rules`",
    )


class HazardDraft(Input):
    level: HazardLevel
    description: str = Field(min_length=1, max_length=4000)
    rectify_days: int | None = Field(default=None, ge=0, le=365, description="0: 立即排除 (deadline the inspection day)")


class ResultIn(Input):
    checklist_id: uuid.UUID
    item_code: Line = Field(min_length=1, max_length=40)
    outcome: Outcome
    note: str | None = Field(default=None, max_length=4000)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    hazard: HazardDraft | None = Field(default=None, description="for outcome hazard; defaults from the checklist item")

    @model_validator(mode="after")
    def _hazard_only_for_hazards(self) -> ResultIn:
        if self.hazard is not None and self.outcome != "hazard":
            raise ValueError("hazard is only given with outcome hazard")
        return self


class ResultsIn(Input):
    results: list[ResultIn] = Field(min_length=1, max_length=1000)


class Attendee(Input):
    role: AttendeeRole
    name: Line = Field(min_length=1, max_length=50)


class SubmitIn(Input):
    attendees: list[Attendee] = Field(min_length=1, max_length=50)
    feedback: str | None = Field(default=None, max_length=8000, description="交流反馈: what was said to the enterprise")


class NoticeIn(Input):
    given_at: Instant | None = Field(default=None, description=f"when the 执法告知 was given, {INSTANT_RANGE}; default now")
    note: str | None = Field(default=None, max_length=4000)


class HazardDraftOut(Output):
    level: HazardLevel
    description: str | None = Field(description="as the inspector wrote it; empty means the note or the item's text")
    rectify_days: int


class ResultOut(Output):
    checklist_id: uuid.UUID
    item_code: str
    outcome: Outcome
    note: str | None
    evidence_ids: list[uuid.UUID]
    hazard: HazardDraftOut | None
    updated_at: datetime


class TeamMember(Output):
    user_id: uuid.UUID
    certificate_no: str | None


class InspectionOut(Output):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    kind: InspectionKind
    with_experts: bool
    inspection_date: date | None = Field(description="the day inspected; null only for inspections started before it was kept")
    site_types: list[str]
    status: InspectionStatus
    checklist_ids: list[uuid.UUID]
    inspector_ids: list[uuid.UUID]
    inspectors: list[TeamMember]
    notice_given_at: datetime | None
    notice_note: str | None
    started_at: datetime | None
    feedback_at: datetime | None
    feedback: str | None
    attendees: list[Attendee]
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime
    results: list[ResultOut]
    hazard_ids: list[uuid.UUID]


class SubmitOut(Output):
    id: uuid.UUID
    status: InspectionStatus
    hazard_ids: list[uuid.UUID]


InspectionDocumentType = Literal["inspection_record", "rectification_order"]


class DeliveryIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client-generated id; a retry with the same id returns the same record")
    document: InspectionDocumentType = Field(description="which of the inspection's issued documents was delivered")
    method: DeliveryMethod
    delivered_at: Instant = Field(description=f"when it was delivered, {INSTANT_RANGE}")
    recipient: Line = Field(min_length=1, max_length=100, description="who received it (signed the 送达回执)")
    evidence_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=20, description="the inspection's evidence proving it: the signed receipt, a postal slip"
    )


class EvidenceHash(Output):
    id: uuid.UUID
    sha256: str


class DeliveryOut(Output):
    id: uuid.UUID
    inspection_id: uuid.UUID | None
    document: InspectionDocumentType
    document_number: str
    method: DeliveryMethod
    delivered_at: datetime
    recipient: str
    evidence: list[EvidenceHash]
    recorded_by: uuid.UUID
    recorded_at: datetime
