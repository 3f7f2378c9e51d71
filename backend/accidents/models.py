"""Accidents, their approved investigation reports with the measures they order, the enterprise's progress on those
measures, and the evaluation of them a year on (安全生产法 第八十六条第三款). Progress reports and findings are
append-only rows: a later finding on a measure is a new row that supersedes the earlier one, never an edit."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk
from backend.workflow import TimelineEntry

# Every UPDATE of an accident checks and bumps this: of two evaluations completed at once only one can win.
_version = Column("version", Integer, nullable=False)


class Accident(SQLModel, table=True):
    __tablename__ = "accident"
    __mapper_args__ = {"version_id_col": _version}
    __table_args__ = (
        Index("ix_accident_created_at_id", "created_at", "id"),
        Index("ix_accident_enterprise_created_at_id", "enterprise_id", "created_at", "id"),
        Index("ix_accident_evaluation_due_id", "evaluation_due", "id"),
    )

    id: uuid.UUID = uuid_pk()
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id")
    # the agency that organises the evaluation and numbers its report: the recording officer's, else the enterprise's
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    level: str = Field(max_length=20, index=True)  # general | larger | major | especially_major
    deaths: int
    injuries: int
    direct_loss: int = Field(sa_type=BigInteger)  # yuan
    summary: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20, index=True)
    client_fingerprint: str = Field(max_length=64)
    recorded_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    # the approved investigation report (事故调查报告的批复)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    approved_by: str | None = Field(default=None, max_length=200)
    document_no: str | None = Field(default=None, max_length=100)
    report_evidence_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    evaluation_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # approved_at + 1 year (the statute)
    evaluation_window_days: int | None = None  # ACCIDENT_EVALUATION_DAYS when the report was recorded
    # the evaluation (整改和防范措施落实情况评估)
    evaluation_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    evaluation_finish_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    evaluated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    conclusion: str | None = Field(default=None, sa_column=Column(Text))
    accountability: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = Field(default=1, sa_column=_version)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()

    events: list["AccidentEvent"] = Relationship(sa_relationship_kwargs={"lazy": "raise", "order_by": "AccidentEvent.at"})


class AccidentEvent(TimelineEntry, table=True):
    __tablename__ = "accident_event"

    accident_id: uuid.UUID = Field(foreign_key="accident.id", index=True)


class AccidentMeasure(SQLModel, table=True):
    """One 整改和防范措施 of the approved report: what, who answers for it, by when."""

    __tablename__ = "accident_measure"
    __table_args__ = (UniqueConstraint("accident_id", "seq"),)

    id: uuid.UUID = uuid_pk()
    accident_id: uuid.UUID = Field(foreign_key="accident.id", index=True)
    seq: int  # its number in the report, from 1
    text: str = Field(sa_column=Column(Text, nullable=False))
    responsible: str = Field(max_length=200)  # the unit or person
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = created_at_field()


class AccidentProgress(SQLModel, table=True):
    """The enterprise's (or an officer's) report of what was done on a measure, with its evidence."""

    __tablename__ = "accident_progress"

    id: uuid.UUID = uuid_pk()
    accident_id: uuid.UUID = Field(foreign_key="accident.id", index=True)
    measure_id: uuid.UUID = Field(foreign_key="accident_measure.id", index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    evidence_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    by_enterprise: bool
    submitted_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class AccidentFinding(SQLModel, table=True):
    """What the evaluation found of one measure; the latest finding of a measure is the one that counts."""

    __tablename__ = "accident_finding"

    id: uuid.UUID = uuid_pk()
    accident_id: uuid.UUID = Field(foreign_key="accident.id", index=True)
    measure_id: uuid.UUID = Field(foreign_key="accident_measure.id", index=True)
    outcome: str = Field(max_length=20)  # done | partly | not_done
    note: str = Field(sa_column=Column(Text, nullable=False))
    evidence_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    hazard_id: uuid.UUID | None = Field(default=None, foreign_key="hazard.id")  # opened when not done
    evaluated_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class AccidentReport(SQLModel, table=True):
    """The 评估报告 as issued when the evaluation was completed: numbered once, kept with its PDF."""

    __tablename__ = "accident_report"

    accident_id: uuid.UUID = Field(foreign_key="accident.id", primary_key=True)
    number: str = Field(max_length=80)
    sha256: str = Field(max_length=64)
    size: int
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    issued_by: uuid.UUID = Field(foreign_key="app_user.id")
    issued_at: datetime = created_at_field()
