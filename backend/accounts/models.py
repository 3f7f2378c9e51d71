"""Agencies (a tree), users with one of five roles, and the enterprises they supervise or belong to."""

import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlmodel import Field, Relationship, SQLModel

from backend.db import UTCDateTime, created_at_field, uuid_pk

ROLES = ("admin", "inspector", "enterprise", "legal_reviewer", "leader")


class Agency(SQLModel, table=True):
    """An emergency-management agency (应急管理部门). `path` lists the ids from the root down, for subtree scope."""

    __tablename__ = "agency"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=200)
    region_code: str = Field(max_length=12)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id", index=True)
    path: str = Field(sa_type=String(1200), index=True)
    created_at: datetime = created_at_field()


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: uuid.UUID = uuid_pk()
    username: str = Field(max_length=150, unique=True)
    password_hash: str = Field(max_length=255)
    display_name: str = Field(max_length=100)
    role: str = Field(max_length=32)
    agency_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id", index=True)
    enterprise_id: uuid.UUID | None = Field(default=None, foreign_key="enterprise.id", index=True)
    certificate_no: str | None = Field(default=None, max_length=64)
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()


class LoginFailure(SQLModel, table=True):
    """One failed login (or one still being checked) for the throttle, shared by every process through the database.

    Kept for the throttle window only: every login deletes a batch of older rows (`backend/accounts/login.py`)."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_address_username_at", "address", "username", "at"),)

    id: uuid.UUID = uuid_pk()
    username: str = Field(max_length=150)  # lower-cased, as typed
    address: str = Field(max_length=64)  # the client's address
    at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class Enterprise(SQLModel, table=True):
    """A production and business unit (生产经营单位) identified by its unified social credit code."""

    __tablename__ = "enterprise"

    id: uuid.UUID = uuid_pk()
    name: str = Field(max_length=200)
    credit_code: str = Field(max_length=18, unique=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    address: str = Field(max_length=300)
    lat: float | None = None
    lng: float | None = None
    principal: str | None = Field(default=None, max_length=100)
    safety_manager: str | None = Field(default=None, max_length=100)
    created_at: datetime = created_at_field()

    topic_rows: list["EnterpriseTopic"] = Relationship(sa_relationship_kwargs={"lazy": "raise", "order_by": "EnterpriseTopic.topic"})

    @property
    def topics(self) -> list[str]:
        return [row.topic for row in self.topic_rows]


class EnterpriseTopic(SQLModel, table=True):
    """The supervision topics of an enterprise, one row each so lists can filter by topic on an index."""

    __tablename__ = "enterprise_topic"
    __table_args__ = (UniqueConstraint("enterprise_id", "topic"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: uuid.UUID = Field(foreign_key="enterprise.id", ondelete="CASCADE", index=True)
    topic: str = Field(max_length=40, index=True)
