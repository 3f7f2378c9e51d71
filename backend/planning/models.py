"""Planning (安全生产法 第六十二条: 分类分级监督管理, 年度监督检查计划) and 双随机、一公开: enterprise
classifications, annual plans, the draws made from them, the tasks drawn, and the conflicts inspectors declared.

Classifications, conflicts and draws are append-only: a change of classification is a new row from its date on, and
a draw is the evidence that the selection was fair, so nothing may rewrite it."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk


class EnterpriseClassification(SQLModel, table=True):
    """One classification of an enterprise from `valid_from` on; the latest `valid_from` on or before a day is the one
    in force that day (the later row of one day wins)."""

    __tablename__ = "enterprise_classification"
    __table_args__ = (Index("ix_enterprise_classification_in_force", "enterprise_id", "valid_from", "created_at"),)

    id: uuid.UUID = uuid_pk()
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id")
    category: str = Field(max_length=16)  # key (重点) | general (一般)
    risk_level: str = Field(max_length=16)  # major | high | medium | low (重大/较大/一般/低)
    basis: str = Field(sa_column=Column(Text, nullable=False))
    valid_from: date
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()


class InspectorConflict(SQLModel, table=True):
    """A conflict of interest (回避) an inspector declared for an enterprise: draws never send them there."""

    __tablename__ = "inspector_conflict"
    __table_args__ = (UniqueConstraint("user_id", "enterprise_id"),)

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    declared_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()


_plan_version = Column("row_version", Integer, nullable=False)


class Plan(SQLModel, table=True):
    """An annual supervision plan (年度监督检查计划) of one agency. A draft may be edited; an approved plan never
    changes: a change is a new version (`supersedes`), which replaces it when approved."""

    __tablename__ = "plan"
    __mapper_args__ = {"version_id_col": _plan_version}
    __table_args__ = (
        UniqueConstraint("agency_id", "year", "version"),
        Index("ix_plan_created_at_id", "created_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    year: int
    version: int = 1
    title: str = Field(max_length=200)
    rules: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=16, index=True)  # draft | approved | superseded
    supersedes_id: uuid.UUID | None = Field(default=None, foreign_key="plan.id", unique=True)
    client_fingerprint: str = Field(max_length=64)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    approved_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    row_version: int = Field(default=1, sa_column=_plan_version)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Draw(SQLModel, table=True):
    """One random draw (双随机) for one rule of a plan, with what a third party needs to recompute it: the seed, the
    population snapshot and the inspectors' snapshot (exactly the texts hashed), and the parameters."""

    __tablename__ = "draw"
    __table_args__ = (Index("ix_draw_created_at_id", "created_at", "id"),)

    id: uuid.UUID = uuid_pk()
    plan_id: uuid.UUID = Field(foreign_key="plan.id", index=True)
    rule_index: int
    category: str = Field(max_length=16)
    topic: str | None = Field(default=None, max_length=40)
    period_start: date
    period_end: date
    drawn_on: date  # the day whose classifications made the population
    seed: str = Field(max_length=64)  # hex of 32 bytes from secrets.token_bytes
    population_hash: str = Field(max_length=64)
    population: str = Field(sa_column=Column(Text, nullable=False))  # sorted enterprise ids, one a line
    population_size: int
    inspectors_hash: str = Field(max_length=64)
    inspectors: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON (backend/planning/draw.py)
    selected: int  # enterprises chosen (all of them for a key rule)
    visits: int  # tasks per chosen enterprise
    inspectors_per_task: int
    client_fingerprint: str = Field(max_length=64)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()


_task_version = Column("version", Integer, nullable=False)


class Task(SQLModel, table=True):
    """One inspection to make: an enterprise, a visit, the inspectors drawn for it and when it is due."""

    __tablename__ = "task"
    __mapper_args__ = {"version_id_col": _task_version}
    __table_args__ = (
        Index("ix_task_plan_rule_status", "plan_id", "rule_index", "status"),
        Index("ix_task_created_at_id", "created_at", "id"),
        UniqueConstraint("draw_id", "enterprise_id", "visit"),
    )

    id: uuid.UUID = uuid_pk()
    plan_id: uuid.UUID = Field(foreign_key="plan.id")
    draw_id: uuid.UUID = Field(foreign_key="draw.id", index=True)
    rule_index: int
    seq: int  # its place in the draw's result
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    visit: int = 1
    topic: str | None = Field(default=None, max_length=40)
    inspector_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    due_by: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(max_length=16)  # assigned | in_progress | done
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", unique=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=1, sa_column=_task_version)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class TaskInspector(SQLModel, table=True):
    """Who was drawn for a task: what `GET /tasks?assignee=me` looks up."""

    __tablename__ = "task_inspector"

    task_id: uuid.UUID = Field(foreign_key="task.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, index=True)
