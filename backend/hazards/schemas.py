"""What crosses the wire for hazards."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from backend.accounts.schemas import Input

Level = Literal["general", "major"]


class HazardIn(Input):
    id: uuid.UUID | None = None
    enterprise_id: uuid.UUID
    level: Level
    description: str = Field(min_length=1, max_length=4000)
    item_code: str | None = Field(default=None, max_length=40)
    checklist_id: uuid.UUID | None = None
    evidence_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    deadline: date | AwareDatetime | None = Field(default=None, description="a date means the end of that day (Asia/Shanghai)")


class HazardEventOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None


class HazardOut(BaseModel):
    id: uuid.UUID
    enterprise_id: uuid.UUID
    topic: str
    level: Level
    description: str
    status: str
    source: str
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


class HazardDetail(HazardOut):
    timeline: list[HazardEventOut]
