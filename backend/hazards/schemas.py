"""What crosses the wire for hazards."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from backend.vocabulary import HazardLevel, HazardSource, HazardStatus, Topic
from backend.wire import DEADLINE_RANGE, ActionIn, Deadline, Input, Line, Output
from backend.workflow import TimelineEntryOut

DEADLINE = f"a date means the end of that day in the agencies' zone (Asia/Shanghai); {DEADLINE_RANGE}"


class HazardIn(Input):
    id: uuid.UUID | None = None
    enterprise_id: uuid.UUID
    level: HazardLevel
    description: str = Field(min_length=1, max_length=4000)
    item_code: Line | None = Field(default=None, max_length=40)
    checklist_id: uuid.UUID | None = None
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    deadline: Deadline | None = Field(default=None, description=DEADLINE)


class OrderIn(ActionIn):
    """责令限期整改: the first order starts the rectification; a later one is the only way to extend it."""

    deadline: Deadline = Field(description=DEADLINE)
    measures: str = Field(min_length=1, max_length=4000)


class GovernancePlanIn(ActionIn):
    """重大事故隐患治理方案: 目标和任务、方法和措施、经费和物资、负责的机构和人员、时限和要求、安全措施和应急预案."""

    objective: str = Field(min_length=1, max_length=4000)
    measures: str = Field(min_length=1, max_length=4000)
    funds: int = Field(ge=0, le=10**12, description="yuan")
    responsible_person: Line = Field(min_length=1, max_length=100)
    deadline: Deadline = Field(description=DEADLINE)
    safeguards: str = Field(min_length=1, max_length=4000)


class RectificationIn(ActionIn):
    description: str = Field(min_length=1, max_length=8000)
    evidence_ids: list[uuid.UUID] = Field(min_length=1, max_length=50, description="photos of the fix, at least one")


class ReviewIn(ActionIn):
    decision: Literal["accept", "reject"]
    opinion: str = Field(min_length=1, max_length=4000)


class LookbackIn(ActionIn):
    outcome: Literal["held", "recurred"]
    note: str = Field(min_length=1, max_length=4000)
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    deadline: Deadline | None = Field(
        default=None, description=f"for recurred: the new deadline (default: as long as the first rectification took); {DEADLINE_RANGE}"
    )


class HazardOut(Output):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    topic: Topic
    level: HazardLevel
    description: str = Field(description="the hazard in the reporter's own words")
    note: str | None = Field(description="the inspector's note on the checklist result it came from")
    item_text: str | None = Field(description="the text of the checklist item it was found under")
    status: HazardStatus
    source: HazardSource
    inspection_id: uuid.UUID | None
    checklist_id: uuid.UUID | None
    item_code: str | None
    evidence_ids: list[uuid.UUID]
    deadline: datetime | None
    overdue: bool
    recurrence_count: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    lookback_due_at: datetime | None
    accident_id: uuid.UUID | None = Field(
        default=None, description="the accident whose evaluation found a measure not done and opened this hazard"
    )


class HazardDetail(HazardOut):
    timeline: list[TimelineEntryOut]


class PlanOut(Output):
    id: uuid.UUID
    hazard_id: uuid.UUID
    at: datetime
    plan: GovernancePlanIn


class StatsRow(Output):
    key: str | None = Field(description="the group: a topic, level, status, agency id or enterprise id")
    name: str | None = Field(default=None, description="the agency's or enterprise's name")
    total: int
    by_status: dict[str, int]
    overdue: int
    median_days_to_close: float | None
    lookbacks_held: int = Field(description="look-backs that found the fix holding")
    lookbacks_recurred: int = Field(description="look-backs that found the hazard back (复发)")
    hazards_recurred: int = Field(description="hazards found back at least once")


class StatsOut(Output):
    group_by: str
    groups: list[StatsRow]
