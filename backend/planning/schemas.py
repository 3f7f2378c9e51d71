"""What crosses the wire for classifications, plans, draws, tasks and conflicts."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field, model_validator

from backend.vocabulary import Category, PlanStatus, RiskLevel, TaskStatus, Topic
from backend.wire import DEADLINE_MAX, DEADLINE_MIN, Input, Line, Output

YEAR_MIN, YEAR_MAX = DEADLINE_MIN.year, DEADLINE_MAX.year


def _in_range(day: date) -> date:
    if not DEADLINE_MIN <= day <= DEADLINE_MAX:
        raise ValueError(f"must lie between {DEADLINE_MIN.isoformat()} and {DEADLINE_MAX.isoformat()}")
    return day


# --- 分类分级 ---------------------------------------------------------------------------------------------------


class ClassificationIn(Input):
    category: Category = Field(description="key (重点检查单位: visited `visits_per_year` times) or general (一般: sampled)")
    risk_level: RiskLevel = Field(description="安全风险等级: major 重大, high 较大, medium 一般, low 低")
    basis: str = Field(min_length=1, max_length=2000, description="why: the assessment, 标准化等级, accident record ...")
    valid_from: date = Field(description="in force from this day (the agencies' zone) until a later classification")

    @model_validator(mode="after")
    def _dates(self) -> ClassificationIn:
        _in_range(self.valid_from)
        return self


class ClassificationOut(Output):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    category: Category
    risk_level: RiskLevel
    basis: str
    valid_from: date
    created_at: datetime


# --- plans ------------------------------------------------------------------------------------------------------


class PlanRule(Input):
    category: Category
    topic: Topic | None = Field(default=None, description="only enterprises with this topic; none: every topic")
    visits_per_year: int | None = Field(default=None, ge=1, le=52, description="key rules: tasks per enterprise a year")
    sample_rate: float | None = Field(
        default=None, gt=0, le=1, description="general rules: the share drawn when a draw gives neither count nor sample_rate"
    )

    @model_validator(mode="after")
    def _fits_category(self) -> PlanRule:
        if self.category == Category.key and self.visits_per_year is None:
            raise ValueError("a key rule gives visits_per_year: key enterprises are not sampled, each gets its visits")
        if self.category == Category.key and self.sample_rate is not None:
            raise ValueError("a key rule is not sampled: give visits_per_year, not sample_rate")
        if self.category == Category.general and self.visits_per_year is not None:
            raise ValueError("a general rule is sampled: give sample_rate (or count and sample_rate per draw), not visits_per_year")
        return self


class AnnualPlanIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client-generated id; a retry with the same id returns the same plan")
    agency_id: uuid.UUID
    year: int = Field(ge=YEAR_MIN, le=YEAR_MAX)
    title: Line = Field(min_length=1, max_length=200)
    rules: list[PlanRule] = Field(min_length=1, max_length=50)
    supersedes: uuid.UUID | None = Field(
        default=None, description="the approved plan this new version replaces (same agency and year) once it is approved"
    )


class AnnualPlanEditIn(Input):
    title: Line = Field(min_length=1, max_length=200)
    rules: list[PlanRule] = Field(min_length=1, max_length=50)


class AnnualPlanOut(Output):
    id: uuid.UUID
    agency_id: uuid.UUID
    year: int
    version: int
    title: str
    rules: list[PlanRule]
    status: PlanStatus
    supersedes: uuid.UUID | None
    approved_at: datetime | None
    approved_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class RuleProgress(Output):
    rule_index: int
    category: Category
    topic: Topic | None
    planned: int = Field(description="tasks drawn for the rule")
    assigned: int = Field(description="drawn, no inspection opened yet")
    in_progress: int
    done: int
    overdue: int = Field(description="past due_by and not done (also counted as assigned or in_progress)")


class ProgressOut(Output):
    plan_id: uuid.UUID
    rules: list[RuleProgress]


# --- draws and tasks --------------------------------------------------------------------------------------------


class DrawIn(Input):
    id: uuid.UUID | None = Field(default=None, description="client-generated id; the same draw sent again returns the same result")
    period_start: date
    period_end: date
    rule_index: int = Field(ge=0, le=49)
    count: int | None = Field(default=None, ge=1, le=1_000_000, description="general rules: how many enterprises to draw")
    sample_rate: float | None = Field(default=None, gt=0, le=1, description="general rules: the share to draw (rounded up)")
    inspectors_per_task: int = Field(default=2, ge=2, le=5, description="at least two (行政处罚法 第四十二条)")

    @model_validator(mode="after")
    def _one_size(self) -> DrawIn:
        _in_range(self.period_start)
        _in_range(self.period_end)
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.count is not None and self.sample_rate is not None:
            raise ValueError("give count or sample_rate, not both")
        return self


class TaskOut(Output):
    id: uuid.UUID
    plan_id: uuid.UUID
    draw_id: uuid.UUID
    rule_index: int
    enterprise_id: uuid.UUID
    visit: int
    topic: Topic | None
    inspector_ids: list[uuid.UUID]
    due_by: datetime
    status: TaskStatus
    inspection_id: uuid.UUID | None
    started_at: datetime | None
    done_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DrawOut(Output):
    id: uuid.UUID
    plan_id: uuid.UUID
    rule_index: int
    category: Category
    topic: Topic | None
    period_start: date
    period_end: date
    drawn_on: date = Field(description="the day whose classifications made the population")
    seed: str = Field(description="hex of the 32 random bytes (secrets.token_bytes) the selection was computed from")
    population_hash: str = Field(description="sha256 (hex) of the population snapshot")
    population_size: int
    inspectors_hash: str = Field(description="sha256 (hex) of the inspectors' snapshot")
    selected: int
    visits: int
    inspectors_per_task: int
    created_at: datetime
    tasks: list[TaskOut]


class SnapshotOut(Output):
    """Everything a third party needs to recompute the draw (mobile_api_spec/API.md)."""

    draw_id: uuid.UUID
    seed: str
    category: Category
    count: int | None = Field(description="enterprises sampled; null for a key rule (every enterprise)")
    visits: int
    inspectors_per_task: int
    population: str = Field(description="the exact text hashed: sorted enterprise ids, one a line")
    population_hash: str
    inspectors: str = Field(description="the exact text hashed: canonical JSON of inspectors, conflicts, previous teams")
    inspectors_hash: str


class DrawVerifyOut(Output):
    valid: bool
    population_hash_matches: bool
    inspectors_hash_matches: bool
    selection_matches: bool = Field(description="the seed and snapshots give exactly the stored tasks and teams")
    tasks: int


# --- conflicts --------------------------------------------------------------------------------------------------


class ConflictIn(Input):
    enterprise_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=2000, description="why (回避): kin, former employer, a stake ...")


class ConflictOut(Output):
    id: uuid.UUID
    user_id: uuid.UUID
    enterprise_id: uuid.UUID
    reason: str
    created_at: datetime


# --- 一公开 -----------------------------------------------------------------------------------------------------


class PublicVisit(Output):
    enterprise_name: str
    credit_code: str
    visit: int
    due_by: datetime
    done: bool
    inspection_date: date | None = Field(description="once done: the day inspected")
    hazards_found: bool | None = Field(description="once done: whether the inspection found hazards")


class PublicDraw(Output):
    id: uuid.UUID
    agency_name: str
    plan_title: str
    year: int
    category: Category
    topic: Topic | None
    period_start: date
    period_end: date
    drawn_at: datetime
    population_size: int
    population_hash: str
    seed: str
    visits: list[PublicVisit]
