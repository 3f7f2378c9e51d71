"""Inspections, the checklist versions and inspectors they use, and their results (one per item)."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk


class Inspection(SQLModel, table=True):
    __tablename__ = "inspection"

    id: uuid.UUID = uuid_pk()
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    kind: str = Field(max_length=16)  # enforcement (执法检查) | routine
    with_experts: bool = False  # 执法+专家
    inspection_date: date | None = None  # the day inspected (agency zone): decides which checklist versions apply
    site_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    status: str = Field(max_length=16, index=True)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    notice_given_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # 执法告知
    notice_note: str | None = Field(default=None, sa_column=Column(Text))
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # 现场检查: first result recorded
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # 交流反馈
    feedback: str | None = Field(default=None, sa_column=Column(Text))
    attendees: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    submit_fingerprint: str | None = Field(default=None, max_length=64)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()

    checklists: list["InspectionChecklist"] = Relationship(sa_relationship_kwargs={"lazy": "raise"})
    inspectors: list["InspectionInspector"] = Relationship(sa_relationship_kwargs={"lazy": "raise"})
    results: list["InspectionResult"] = Relationship(sa_relationship_kwargs={"lazy": "raise"})


class InspectionChecklist(SQLModel, table=True):
    """The exact checklist versions an inspection used."""

    __tablename__ = "inspection_checklist"

    inspection_id: uuid.UUID = Field(foreign_key="inspection.id", primary_key=True)
    checklist_id: uuid.UUID = Field(foreign_key="checklist.id", primary_key=True)


class InspectionInspector(SQLModel, table=True):
    __tablename__ = "inspection_inspector"

    inspection_id: uuid.UUID = Field(foreign_key="inspection.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True)
    certificate_no: str | None = Field(default=None, max_length=64)  # as held on the day


class InspectionResult(SQLModel, table=True):
    __tablename__ = "inspection_result"
    __table_args__ = (UniqueConstraint("inspection_id", "checklist_id", "item_code"),)

    id: uuid.UUID = uuid_pk()
    inspection_id: uuid.UUID = Field(foreign_key="inspection.id", index=True)
    checklist_id: uuid.UUID = Field(foreign_key="checklist.id")
    item_code: str = Field(max_length=40)
    outcome: str = Field(max_length=20)  # compliant | hazard | not_applicable
    note: str | None = Field(default=None, sa_column=Column(Text))
    evidence_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hazard: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = created_at_field()
