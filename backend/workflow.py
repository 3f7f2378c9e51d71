"""State machines as data: one map of allowed moves per workflow, one `transition()` that enforces it.

A move not in the map is `409 invalid_transition` and changes nothing; a move the role may not make is `403`.
Every move stamps who, when, from, to and why: in the caller's timeline row and in the audit log, in the same
transaction as the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from backend import audit
from backend.audit import Actor
from backend.db import created_at_field, uuid_pk
from backend.errors import Conflict, Forbidden


class TimelineEntry(SQLModel):
    """The columns every timeline shares (a hazard's, a case's): one append-only row per step."""

    id: uuid.UUID = uuid_pk()
    at: datetime = created_at_field()
    actor_id: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    actor: str = Field(max_length=150)
    action: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    note: str | None = Field(default=None, sa_type=Text)
    # what the step carried (an order's deadline, a plan, a review, a look-back ...)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)


class TimelineEntryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None
    data: dict[str, Any]


def timeline_entry(
    model: type[TimelineEntry], actor: Actor, owner: dict[str, Any], action: str, from_status: str | None, to_status: str,
    note: str | None, data: dict[str, Any] | None = None, **extra: Any,
) -> Any:
    return model(
        **owner, actor_id=actor.user_id, actor=actor.username, action=action, from_status=from_status, to_status=to_status,
        note=note, data=to_jsonable_python(data or {}), **extra,
    )


@dataclass(frozen=True)
class Move:
    to: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Workflow:
    entity: str
    # from-status -> action -> where it leads and who may take it
    allowed: Mapping[str, Mapping[str, Move]]

    def check(self, current: str, action: str, role: str) -> str:
        """The status `action` leads to from `current`; 409 when it is no move from there, 403 for the wrong role."""
        move = self.allowed.get(current, {}).get(action)
        if move is None:
            raise Conflict(
                f"a {self.entity} in status {current} cannot be {action.replace('_', ' ')}",
                code="invalid_transition",
                from_status=current,
                action=action,
            )
        if role not in move.roles:
            raise Forbidden(f"the role {role} may not take the step {action} on a {self.entity}", code="role_forbidden")
        return move.to

    def transition(
        self,
        session: AsyncSession,
        obj: Any,
        action: str,
        actor: Actor,
        note: str | None,
        timeline: Callable[[str, str, str], Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        """Take `action` on `obj`; returns the status it came from. The only place a status is assigned."""
        current = obj.status
        target = self.check(current, action, actor.role)
        obj.status = target
        if timeline is not None:
            session.add(timeline(action, current, target))
        audit.record(
            session, actor, f"{self.entity}.{action}", self.entity, obj.id,
            {"from": current, "to": target, "note": note, **(data or {})},
        )
        return current
