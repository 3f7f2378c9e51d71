"""Who sees what: the one place that turns a role into a filter on agencies and enterprises.

Every domain asks here before reading or writing an enterprise's data, including ids that arrive inside bodies.
Anything outside the caller's scope is reported as not found, so existence does not leak: a path id answers 404,
an id inside a body answers 422 naming the field.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.models import Agency, Enterprise
from backend.audit import Actor
from backend.errors import NotFound, ValidationFailed

AGENCY_ROLES = ("inspector", "legal_reviewer")


def _missing(detail: str, code: str, field: str | None) -> NotFound | ValidationFailed:
    if field:
        return ValidationFailed(detail, code=code, field=field)
    return NotFound(detail, code=code)


def agency_subtree_clause(actor: Actor, path_col: Any = Agency.path) -> Any:
    """Agencies the actor may act over: admins all, agency staff their agency and its sub-agencies."""
    if actor.role == "admin":
        return true()
    if actor.role in AGENCY_ROLES and actor.agency_path:
        return path_col.startswith(actor.agency_path, autoescape=True)
    return false()


def enterprise_clause(actor: Actor) -> Any:
    """A filter on Enterprise (joined with its Agency) for the enterprises the actor may see."""
    if actor.role == "enterprise":
        return Enterprise.id == actor.enterprise_id if actor.enterprise_id else false()
    return agency_subtree_clause(actor)


def visible_enterprises(actor: Actor) -> Any:
    return select(Enterprise).join(Agency, Agency.id == Enterprise.agency_id).where(enterprise_clause(actor))


async def require_enterprise(
    session: AsyncSession, actor: Actor, enterprise_id: uuid.UUID, field: str | None = None
) -> Enterprise:
    enterprise = (
        await session.execute(visible_enterprises(actor).where(Enterprise.id == enterprise_id))
    ).scalar_one_or_none()
    if enterprise is None:
        raise _missing(f"enterprise {enterprise_id} not found", "enterprise_not_found", field)
    return enterprise


async def require_agency(
    session: AsyncSession, actor: Actor, agency_id: uuid.UUID, field: str | None = None
) -> Agency:
    agency = (
        await session.execute(select(Agency).where(Agency.id == agency_id, agency_subtree_clause(actor)))
    ).scalar_one_or_none()
    if agency is None:
        raise _missing(f"agency {agency_id} not found", "agency_not_found", field)
    return agency
