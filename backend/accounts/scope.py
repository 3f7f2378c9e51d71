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

from backend.accounts.models import Agency, Enterprise, User
from backend.audit import Actor
from backend.errors import NotFound, ValidationFailed

AGENCY_ROLES = ("inspector", "legal_reviewer")
MIN_OFFICERS = 2  # 行政处罚法 第四十二条: 执法人员不得少于两人


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


def in_enterprise_scope(model: Any, actor: Actor) -> Any:
    """SELECT model rows whose enterprise the actor may see (the model has an `enterprise_id`)."""
    return (
        select(model)
        .join(Enterprise, Enterprise.id == model.enterprise_id)
        .join(Agency, Agency.id == Enterprise.agency_id)
        .where(enterprise_clause(actor))
    )


async def agency_path_of(session: AsyncSession, enterprise_id: uuid.UUID) -> str:
    """The path of the agency that supervises the enterprise: who may see its data starts from here."""
    query = select(Agency.path).join(Enterprise, Enterprise.agency_id == Agency.id).where(Enterprise.id == enterprise_id)
    return (await session.execute(query)).scalar_one()


async def supervising_officers(
    session: AsyncSession, user_ids: list[uuid.UUID], enterprise_id: uuid.UUID, *, field: str, certified_at_least: int = 0
) -> list[User]:
    """The officers (active inspectors of an agency that supervises the enterprise) for a team or a case; 422 naming
    `field` for anyone else, and when fewer than `certified_at_least` of them hold a certificate (执法证)."""
    enterprise_path = await agency_path_of(session, enterprise_id)
    rows = (await session.execute(select(User, Agency.path).join(Agency, Agency.id == User.agency_id).where(User.id.in_(user_ids)))).all()
    officers = [u for u, path in rows if u.role == "inspector" and u.is_active and enterprise_path.startswith(path)]
    strangers = sorted(str(u) for u in set(user_ids) - {u.id for u in officers})
    if strangers:
        raise ValidationFailed(
            f"not inspectors of an agency supervising this enterprise: {strangers}", code="inspector_not_eligible", field=field
        )
    if sum(1 for u in officers if u.certificate_no) < certified_at_least:
        raise ValidationFailed(
            f"at least {certified_at_least} officers holding enforcement certificates are needed (行政处罚法 第四十二条)",
            code="two_officers_required",
            field=field,
        )
    return officers
