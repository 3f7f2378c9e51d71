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
class Workflow:
    entity: str
    # from-status -> to-status -> the roles that may make that move
    allowed: Mapping[str, Mapping[str, frozenset[str]]]

    def check(self, current: str, target: str, role: str) -> None:
        moves = self.allowed.get(current, {})
        if target not in moves:
            raise Conflict(
                f"a {self.entity} in status {current} cannot move to {target}",
                code="invalid_transition",
                from_status=current,
                to_status=target,
            )
        if role not in moves[target]:
            raise Forbidden(f"the role {role} may not move a {self.entity} from {current} to {target}", code="role_forbidden")

    def transition(
        self,
        session: AsyncSession,
        obj: Any,
        target: str,
        actor: Actor,
        note: str | None,
        timeline: Callable[[str, str], Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> str:
        """Move `obj` to `target`; returns the status it came from. The only place a status is assigned."""
        current = obj.status
        self.check(current, target, actor.role)
        obj.status = target
        if timeline is not None:
            session.add(timeline(current, target))
        audit.record(
            session, actor, f"{self.entity}.{target}", self.entity, obj.id, {"from": current, "to": target, "note": note, **(data or {})}
        )
        return current
