"""Published checklist versions and their items. A published version is never changed: a new version is a new row."""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from backend.db import created_at_field


class Checklist(SQLModel, table=True):
    __tablename__ = "checklist"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: uuid.UUID = Field(primary_key=True)
    code: str = Field(max_length=80, index=True)
    version: str = Field(max_length=40)
    topic: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=16)
    title: str = Field(max_length=300)
    document_number: str = Field(max_length=200)
    issuing_body: str | None = Field(default=None, max_length=200)
    effective_from: date | None = None
    effective_to: date | None = None
    replaces: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    superseded_by: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    official_item_count: int | None = None
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: str | None = Field(default=None, sa_column=Column(Text))
    combination_rules: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    item_count: int
    major_item_count: int
    content_sha256: str = Field(max_length=64)
    source_file: str = Field(max_length=200)
    published_at: datetime = created_at_field()

    items: list["ChecklistItem"] = Relationship(sa_relationship_kwargs={"lazy": "raise", "order_by": "ChecklistItem.position"})


class ChecklistItem(SQLModel, table=True):
    __tablename__ = "checklist_item"
    __table_args__ = (UniqueConstraint("checklist_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    checklist_id: uuid.UUID = Field(foreign_key="checklist.id", index=True)
    position: int
    code: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    legal_basis: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    major_hazard: bool
    rectify_days: int
    min_photos: int
    verified: bool
    major_standard_items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))


class ChecklistWithdrawal(SQLModel, table=True):
    """A published version taken out of use (renamed or corrected): an append-only fact, the version row is untouched.

    A withdrawn version is no longer offered or accepted for new inspections; inspections that used it keep it."""

    __tablename__ = "checklist_withdrawal"

    checklist_id: uuid.UUID = Field(foreign_key="checklist.id", primary_key=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    replaced_by: uuid.UUID | None = None
    withdrawn_at: datetime = created_at_field()
