"""Enforcement cases (执法案件): handlers, the hash-chained full-process record, draft decisions, legal reviews,
the case's history and the documents issued. Everything but the case row itself is append-only."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk
from backend.workflow import TimelineEntry

GENESIS_HASH = "0" * 64

_version = Column("version", Integer, nullable=False)

# Each deadline of the procedure: the due column, the column set when the step was taken, and the statuses in which
# the step is still to be taken. The case's deadlines and the overdue list (`GET /cases?overdue_step=`) read these;
# backend/vocabulary.py OverdueStep names the steps.
BEFORE_DECISION = ("open", "decision_draft", "legal_review", "approved", "notified", "hearing_requested", "hearing_scheduled", "heard")
DEADLINE_COLUMNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "decision": ("decide_by", "decided_at", BEFORE_DECISION),
    "statement": ("statement_due", "statement_met_at", ("notified",)),
    "hearing_request": ("hearing_request_due", "hearing_request_met_at", ("notified",)),
    "delivery": ("delivery_due", "delivered_at", ("decided",)),
    "payment": ("payment_due", "executed_at", ("decided", "delivered")),
}


def pending_clause(step: str) -> str:
    """The cases whose `step` is still to be taken, as SQL: the predicate of its partial index and of the list."""
    due, met, statuses = DEADLINE_COLUMNS[step]
    return f"status IN ({', '.join(repr(s) for s in statuses)}) AND {met} IS NULL AND {due} IS NOT NULL"


def _open_deadline_index(step: str) -> Index:
    """Cases whose `step` is still to be taken, newest first: what the overdue list walks, one page at a time."""
    where = text(pending_clause(step))
    return Index(f"ix_enforcement_case_open_{step}", "created_at", "id", postgresql_where=where, sqlite_where=where)


class Case(SQLModel, table=True):
    __tablename__ = "enforcement_case"
    __mapper_args__ = {"version_id_col": _version}
    __table_args__ = (
        Index("ix_enforcement_case_created_at_id", "created_at", "id"),
        *[_open_deadline_index(step) for step in DEADLINE_COLUMNS],
    )

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
    # 行政处罚程序 (procedure.py): 告知 and the party's periods, delivery, payment, closing
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    statement_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    statement_met_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # first statement or waiver
    hearing_right: bool = False  # 行政处罚法 第六十三条, computed from the measures at 告知
    hearing_request_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hearing_request_met_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # hearing requested or waived
    delivery_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # every decision delivered
    payment_due: datetime | None = Field(default=None, sa_type=UTCDateTime)  # earliest due of an unsettled target
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    court_enforcement: bool = False
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
        UniqueConstraint("case_id", "type", "target", "edition"),
        UniqueConstraint("inspection_id", "type"),
        UniqueConstraint("hazard_event_id", "type"),
    )

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID | None = Field(default=None, foreign_key="enforcement_case.id", index=True)
    inspection_id: uuid.UUID | None = Field(default=None, foreign_key="inspection.id", index=True)
    hazard_id: uuid.UUID | None = Field(default=None, foreign_key="hazard.id", index=True)
    hazard_event_id: uuid.UUID | None = Field(default=None, foreign_key="hazard_event.id")  # the review it records
    type: str = Field(max_length=30)
    # whom it is addressed to where a case has several (a 行政处罚决定书 per target: "enterprise" or a person's name)
    target: str = Field(default="", max_length=100)
    # a notice issued again after the draft changed (告知 anew) is a new edition; the latest is served
    edition: int = 1
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


class CaseStatement(SQLModel, table=True):
    """陈述、申辩 (行政处罚法 第四十五条), or the party's written waiver of its statement and hearing rights."""

    __tablename__ = "case_statement"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    content: str = Field(sa_column=Column(Text, nullable=False))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{id, sha256}]
    received_at: datetime = Field(sa_type=UTCDateTime)
    waived: bool = False
    by_party: bool  # sent by the enterprise's own user, or recorded by a handler
    submitted_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class CaseStatementReply(SQLModel, table=True):
    """复核: the handlers' answer to one statement, adopted or not, with the reasoning."""

    __tablename__ = "case_statement_reply"

    id: uuid.UUID = uuid_pk()
    statement_id: uuid.UUID = Field(foreign_key="case_statement.id", unique=True)
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    adopted: bool
    reasoning: str = Field(sa_column=Column(Text, nullable=False))
    replied_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = created_at_field()


class CaseHearing(SQLModel, table=True):
    """听证: scheduled by a handler, hosted by someone who did not investigate, recorded by the host (听证笔录)."""

    __tablename__ = "case_hearing"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    scheduled_at: datetime = Field(sa_type=UTCDateTime)
    place: str = Field(max_length=300)
    host_id: uuid.UUID = Field(foreign_key="app_user.id")
    clerk_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    scheduled_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = created_at_field()  # when the party was told (the notice of at least seven working days)
    held_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attendees: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summary: str | None = Field(default=None, sa_column=Column(Text))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class CaseDiscussion(SQLModel, table=True):
    """集体讨论 (行政处罚法 第五十七条第二款) of one draft decision by the agency's leaders."""

    __tablename__ = "case_discussion"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    decision_id: uuid.UUID = Field(foreign_key="case_decision.id")
    held_at: datetime = Field(sa_type=UTCDateTime)
    participants: list[str] = Field(sa_column=Column(JSON, nullable=False))
    conclusion: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: datetime = created_at_field()


class CaseApproval(SQLModel, table=True):
    """A leader's approval (行政机关负责人批准) of one draft decision."""

    __tablename__ = "case_approval"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    decision_id: uuid.UUID = Field(foreign_key="case_decision.id")
    leader_id: uuid.UUID = Field(foreign_key="app_user.id")
    opinion: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = created_at_field()


class CaseDelivery(SQLModel, table=True):
    """送达 of an issued document (行政处罚法 第六十一条); a decision's delivery starts its payment period (第六十七条)."""

    __tablename__ = "case_delivery"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    document_type: str = Field(max_length=30)
    target: str = Field(default="", max_length=100)
    document_number: str = Field(max_length=80)
    method: str = Field(max_length=20)
    delivered_at: datetime = Field(sa_type=UTCDateTime)
    recipient: str = Field(max_length=100)
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    late: bool = False
    payment_due: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    created_at: datetime = created_at_field()


class CasePayment(SQLModel, table=True):
    """A payment of a fine (and of any 加处罚款) by one target, with the bank's receipt number."""

    __tablename__ = "case_payment"

    id: uuid.UUID = uuid_pk()
    case_id: uuid.UUID = Field(foreign_key="enforcement_case.id", index=True)
    target: str = Field(max_length=100)
    amount: int = Field(sa_type=BigInteger)
    paid_at: datetime = Field(sa_type=UTCDateTime)
    receipt_no: str = Field(max_length=100)
    recorded_by: uuid.UUID = Field(foreign_key="app_user.id")
    client_fingerprint: str = Field(max_length=64)
    created_at: datetime = created_at_field()
