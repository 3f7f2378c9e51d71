"""State machines as data: one map of allowed moves per workflow, one `transition()` that enforces it.

A move not in the map is `409 invalid_transition` and changes nothing; a move the role may not make is `403`.
Every move stamps who, when, from, to and why: in the caller's timeline row and in the audit log, in the same
transaction as the change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend import audit
from backend.audit import Actor
from backend.errors import Conflict, Forbidden


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
