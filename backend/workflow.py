"""State machines as data: one map of allowed moves per workflow, one `transition()` that enforces it.

A move not in the map is `409 invalid_transition` and changes nothing; a move the role may not make is `403`.
Every move stamps who, when, from, to and why in the workflow's timeline row and in the audit log, in the same
transaction as the change. Steps that do not change the status (a governance plan, an extension, a notice) are
moves from a status to itself, so they are checked and recorded the same way.

Actions a phone sends are replayable: each carries an optional client `id` and a fingerprint of its content, kept
in the timeline row. Sending the same action again after a lost answer finds that row (`replayed()`) and the caller
answers as the first time instead of acting twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from backend import audit
from backend.audit import Actor
from backend.clock import jsonable
from backend.db import created_at_field, uuid_pk
from backend.errors import Conflict, ErrorCode, Forbidden
from backend.idempotency import ensure_same, fingerprint
from backend.integration.outbox import emit
from backend.wire import Output

ALLOWED_MOVES_KEY = "workflow_moves"  # session.info: the status changes transition() made, checked at flush


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
    # the client's id for this action and the fingerprint of what it asked, so a replay is recognised
    client_id: uuid.UUID | None = Field(default=None, unique=True, index=True)
    fingerprint: str | None = Field(default=None, max_length=64)


class TimelineEntryOut(Output):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Move:
    to: str
    roles: frozenset[str]


@dataclass(frozen=True)
class ActionRequest:
    """What a phone asked for: its optional client id and the fingerprint of the request's meaning."""

    client_id: uuid.UUID | None
    fingerprint: str

    @classmethod
    def of(cls, operation: str, body: BaseModel | None = None) -> ActionRequest:
        content = body.model_dump(mode="json", exclude={"id"}) if body is not None else {}
        client_id = getattr(body, "id", None) if body is not None else None
        return cls(client_id=client_id, fingerprint=fingerprint({"operation": operation, **content}))


@dataclass(frozen=True)
class Workflow:
    entity: str
    timeline: type[TimelineEntry] | None
    owner_key: str
    # from-status -> action -> where it leads and who may take it
    allowed: Mapping[str, Mapping[str, Move]]
    # action -> the event it raises (backend/integration/outbox.py), written with the step in the same transaction
    events: Mapping[str, str] = field(default_factory=dict)
    # what such an event carries about `obj` (the resource as the API shows it)
    event_data: Callable[[Any], dict[str, Any]] | None = None

    def check(self, current: str, action: str, role: str) -> str:
        """The status `action` leads to from `current`; 409 when it is no move from there, 403 for the wrong role."""
        move = self.allowed.get(current, {}).get(action)
        if move is None:
            raise Conflict(
                f"a {self.entity} in status {current} cannot be {action.replace('_', ' ')}",
                code=ErrorCode.INVALID_TRANSITION,
                from_status=current,
                action=action,
            )
        if role not in move.roles:
            raise Forbidden(f"the role {role} may not take the step {action} on a {self.entity}", code=ErrorCode.ROLE_FORBIDDEN)
        return move.to

    def transition(
        self,
        session: AsyncSession,
        obj: Any,
        action: str,
        actor: Actor,
        *,
        note: str | None = None,
        data: dict[str, Any] | None = None,
        request: ActionRequest | None = None,
    ) -> TimelineEntry | None:
        """Take `action` on `obj`: the only place a status is assigned. Returns the timeline row it wrote."""
        current = obj.status
        target = self.check(current, action, actor.role)
        obj.status = target
        session.info.setdefault(ALLOWED_MOVES_KEY, set()).add((id(obj), target))
        payload = jsonable(data or {})
        event = None
        if self.timeline is not None:
            event = self.timeline(
                **{self.owner_key: obj.id},
                actor_id=actor.user_id,
                actor=actor.username,
                action=action,
                from_status=current,
                to_status=target,
                note=note,
                data=payload,
                client_id=request.client_id if request else None,
                fingerprint=request.fingerprint if request else None,
            )
            session.add(event)
        audit.record(
            session, actor, f"{self.entity}.{action}", self.entity, obj.id, {"from": current, "to": target, "note": note, **payload}
        )
        raised = self.events.get(action)
        if raised is not None:
            about = self.event_data(obj) if self.event_data else {"id": obj.id}
            emit(session, raised, {self.entity: about, "action": action, "by": actor.username, "step": payload}, subject_id=obj.id)
        return event

    def creation_rows(self, obj: Any, actor: Actor, note: str | None, data: dict[str, Any], action: str = "created") -> list[Any]:
        """The first timeline row and the audit row of a new `obj` (inserted by the caller in its first status)."""
        payload = jsonable(data)
        rows: list[Any] = [audit.entry(actor, f"{self.entity}.create", self.entity, obj.id, {"status": obj.status, **payload})]
        if self.timeline is not None:
            rows.append(
                self.timeline(
                    **{self.owner_key: obj.id},
                    actor_id=actor.user_id,
                    actor=actor.username,
                    action=action,
                    from_status=None,
                    to_status=obj.status,
                    note=note,
                    data=payload,
                )
            )
        return rows

    async def replayed(self, session: AsyncSession, obj: Any, actor: Actor, request: ActionRequest) -> TimelineEntry | None:
        """The step an earlier send of this same request took on `obj`, if it took effect.

        With a client id: the row carrying that id (another object's or other content is `409 duplicate_conflict`).
        Without: the object's latest step, when the same person took it with the same content — a retry of a step
        that changed the status can only be the latest step, because any other step since would have moved it on."""
        assert self.timeline is not None
        model = self.timeline
        owner = getattr(model, self.owner_key)
        if request.client_id is not None:
            query = select(model).where(col(model.client_id) == request.client_id)
            earlier = (await session.execute(query)).scalar_one_or_none()
            if earlier is None:
                return None
            same = getattr(earlier, self.owner_key) == obj.id and earlier.fingerprint == request.fingerprint
            ensure_same(request.fingerprint if same else None, request.fingerprint, f"{self.entity} action", request.client_id)
            return earlier
        query = select(model).where(owner == obj.id).order_by(col(model.at).desc(), col(model.id).desc()).limit(1)
        latest = (await session.execute(query)).scalar_one_or_none()
        if latest is not None and latest.fingerprint == request.fingerprint and latest.actor_id == actor.user_id:
            return latest
        return None
