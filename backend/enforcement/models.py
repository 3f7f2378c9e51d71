"""Enforcement cases (执法案件): handlers, the hash-chained full-process record, draft decisions, legal reviews,
the case's history and the documents issued. Everything but the case row itself is append-only."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk
from backend.workflow import TimelineEntry

GENESIS_HASH = "0" * 64

_version = Column("version", Integer, nullable=False)


class Case(SQLModel, table=True):
    __tablename__ = "enforcement_case"
    __mapper_args__ = {"version_id_col": _version}

    id: uuid.UUID = uuid_pk()
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)  # the handling agency (the opener's)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id")
    title: str = Field(max_length=300)
    status: str = Field(max_length=20, index=True)
    opened_at: datetime = created_at_field()  # 立案
    decide_by: datetime = Field(sa_type=UTCDateTime)  # 行政处罚法 第六十条: 90 days from 立案 unless extended
    record_count: int = 0
    head_hash: str = Field(default=GENESIS_HASH, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    version: int = Field(default=1, sa_column=_version)
    client_fingerprint: str = Field(max_length=64)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class CaseHandler(SQLModel, table=True):
    __tablename__ = "case_handler"

    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True)
    certificate_no: str = Field(max_length=64)


class CaseRecord(SQLModel, table=True):
    """One entry of 执法全过程记录. `hash` = sha256(prev_hash + canonical content incl. the evidence's sha256)."""

    __tablename__ = "case_record"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    seq: int
    kind: str = Field(max_length=20)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    description: str = Field(sa_column=Column(Text, nullable=False))
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{id, sha256}]
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = created_at_field()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    client_fingerprint: str = Field(max_length=64)


class Decision(SQLModel, table=True):
    """A draft of the decision. A new draft is a new row; the newest is the one reviewed and decided."""

    __tablename__ = "case_decision"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    measures: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    facts: str = Field(sa_column=Column(Text, nullable=False))
    reasoning: str = Field(sa_column=Column(Text, nullable=False))
    major: bool
    major_reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    drafted_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = created_at_field()


class LegalReview(SQLModel, table=True):
    """法制审核: approve or return, with the opinion, for one draft."""

    __tablename__ = "legal_review"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    decision_id: uuid.UUID = Field(foreign_key="case_decision.id")
    reviewer_id: uuid.UUID = Field(foreign_key="app_user.id")
    outcome: str = Field(max_length=10)  # approve | return
    opinion: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = created_at_field()


class CaseEvent(TimelineEntry, table=True):
    __tablename__ = "case_event"

    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)


class IssuedDocument(SQLModel, table=True):
    """A PDF issued once, numbered per agency and year; its sha256 lets a printed copy be checked later.

    It belongs to a case (the penalty documents), to an inspection (现场检查记录 and 责令限期整改指令书: one of each
    per inspection, whether asked for through the inspection or through a case opened from it; such a row carries
    both ids), or to one review of a hazard (整改复查意见书).

    The PDF's bytes are kept here (`pdf`; a few kilobytes), so issuing needs no call to the object store inside the
    transaction that locks the case. Documents issued before that was so have `object_key` instead, in the store."""

    __tablename__ = "issued_document"
    __table_args__ = (
        UniqueConstraint("case_id", "type"),
        UniqueConstraint("inspection_id", "type"),
        UniqueConstraint("hazard_event_id", "type"),
    )

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID | None = Field(default=None, foreign_key="enforcement_case.id", index=True)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", index=True)
    hazard_id: uuid.UUID | None = Field(default=None, foreign_key="hazard.id", index=True)
    hazard_event_id: uuid.UUID | None = Field(default=None, foreign_key="hazard_event.id")  # the review it records
    type: str = Field(max_length=30)
    number: str = Field(max_length=80)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    pdf: bytes | None = Field(default=None, sa_type=LargeBinary)
    object_key: str | None = Field(default=None, max_length=200)
    issued_by: uuid.UUID = Field(foreign_key="app_user.id")
    issued_at: datetime = created_at_field()


class DocumentDelivery(SQLModel, table=True):
    """送达: one issued document handed to (or left for, mailed, sent electronically to, announced to) its addressee,
    with the proof (a photo of the signed 送达回执, a postal receipt). Append-only; the id is the client's."""

    __tablename__ = "document_delivery"

    id: uuid.UUID = uuid_pk()
    document_id: uuid.UUID = Field(foreign_key="issued_document.id", index=True)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", index=True)
    case_id: uuid.UUID | None = Field(default=None, foreign_key="enforcement_case.id", index=True)
    method: str = Field(max_length=20)  # direct | left | mail | electronic | announcement
    delivered_at: datetime = Field(sa_type=UTCDateTime)
    recipient: str = Field(max_length=100)
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{id, sha256}]
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    recorded_at: datetime = created_at_field()
    client_fingerprint: str = Field(max_length=64)


class DocumentCounter(SQLModel, table=True):
    """The last 文号 number used per agency, year and document type."""

    __tablename__ = "document_counter"

    agency_id: uuid.UUID = Field(foreign_key="agency.id", primary_key=True)
    year: int = Field(primary_key=True)
    type: str = Field(max_length=30, primary_key=True)
    last: int = 0
