"""Hazards and their timeline. The timeline is append-only: every move is a new row."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Column, Index, Integer, Text, UniqueConstraint, text
from sqlmodel import Field, Relationship, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk
from backend.workflow import TimelineEntry

# Every UPDATE of a hazard checks and bumps this: of two concurrent reviews only one can win.
_version = Column("version", Integer, nullable=False)


class Hazard(SQLModel, table=True):
    __tablename__ = "hazard"
    __mapper_args__ = {"version_id_col": _version}
    __table_args__ = (
        # keyset pages of the list endpoint, newest first, per common filter
        Index("ix_hazard_created_at_id", "created_at", "id"),
        Index("ix_hazard_status_created_at_id", "status", "created_at", "id"),
        Index("ix_hazard_enterprise_created_at_id", "enterprise_id", "created_at", "id"),
        Index("ix_hazard_topic_created_at_id", "topic", "created_at", "id"),
        # overdue = rectifying past the deadline: a small partial index answers it for the figures
        Index(
            "ix_hazard_rectifying_deadline",
            "deadline",
            postgresql_where=text("status = 'rectifying'"),
            sqlite_where=text("status = 'rectifying'"),
            postgresql_include=["enterprise_id", "topic", "level"],  # answered from the index alone
        ),
    )

    id: uuid.UUID = uuid_pk()
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id")
    topic: str = Field(max_length=40)
    level: str = Field(max_length=16)  # general | major
    description: str = Field(sa_column=Column(Text, nullable=False))  # in the reporter's own words
    note: str | None = Field(default=None, sa_column=Column(Text))  # the inspector's note on the checklist result
    item_text: str | None = Field(default=None, sa_column=Column(Text))  # the checklist item it was found under
    status: str = Field(max_length=20)
    source: str = Field(max_length=20)  # inspection | inspector | self_inspection
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", index=True)
    checklist_id: uuid.UUID | None = Field(default=None, foreign_key="checklist.id")
    item_code: str | None = Field(default=None, max_length=40)
    evidence_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # the finding's photos
    deadline: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    recurrence_count: int = 0
    version: int = Field(default=1, sa_column=_version)
    client_fingerprint: str = Field(max_length=64)
    reported_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # 回头看: chosen when the hazard closes (every major one; a reproducible sample of general ones)
    lookback_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # opened by an accident evaluation that found one of the accident's measures not done
    accident_id: uuid.UUID | None = Field(default=None, foreign_key="accident.id", index=True)

    events: list["HazardEvent"] = Relationship(sa_relationship_kwargs={"lazy": "raise", "order_by": "HazardEvent.at"})


class HazardEvent(TimelineEntry, table=True):
    __tablename__ = "hazard_event"

    hazard_id: uuid.UUID = Field(foreign_key="hazard.id", index=True)


class HazardTally(SQLModel, table=True):
    """Running counts of hazards per enterprise, topic, level, status and whole days to close, kept in the same
    transaction as every hazard change, so the supervisors' figures never have to scan a million hazards."""

    __tablename__ = "hazard_tally"
    __table_args__ = (UniqueConstraint("enterprise_id", "topic", "level", "status", "close_days", "recurred", name="uq_hazard_tally_key"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id")
    topic: str = Field(max_length=40)
    level: str = Field(max_length=16)
    status: str = Field(max_length=20)
    close_days: int  # calendar days from report to close in the agency's zone; -1 while not closed
    recurred: bool  # found back by a look-back at least once
    hazards: int = 0
    recurrences: int = 0
