"""The append-only audit log: every state change writes one row in the same transaction as the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Column
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from backend.db import created_at_field, uuid_pk


@dataclass(frozen=True)
class Actor:
    """Who is acting, resolved from the token; services take this instead of a request."""

    user_id: uuid.UUID | None
    username: str
    role: str
    agency_id: uuid.UUID | None = None
    agency_path: str | None = None
    enterprise_id: uuid.UUID | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, reason: str = "system") -> Actor:
        return cls(user_id=None, username=reason, role="system")


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: uuid.UUID = uuid_pk()
    at: datetime = created_at_field()
    actor_id: uuid.UUID | None = Field(default=None, index=True)
    actor_username: str = Field(max_length=150)
    actor_role: str = Field(max_length=32)
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=64)
    entity_id: str = Field(max_length=64, index=True)
    request_id: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: Any,
    data: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction; it commits or rolls back with the change itself."""
    row = entry(actor, action, entity, entity_id, data)
    session.add(row)
    return row


def entry(actor: Actor, action: str, entity: str, entity_id: Any, data: dict[str, Any] | None = None) -> AuditLog:
    return AuditLog(
        actor_id=actor.user_id,
        actor_username=actor.username,
        actor_role=actor.role,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        request_id=actor.request_id,
        data=to_jsonable_python(data or {}),
    )
