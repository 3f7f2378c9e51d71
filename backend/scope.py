"""Who may read what: the one place that turns an actor into a filter, one statement per aggregate.

Every service query starts from `readable(actor, Model)`; ids in paths go through `one()` and ids inside bodies
through `one()`/`many()` with the body's field name. Anything outside the caller's scope is reported exactly as an
id that does not exist: `404 <thing>_not_found` in a path, `422 <thing>_not_found` naming the field in a body.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Select, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accidents.models import Accident
from backend.accounts.models import Agency, Enterprise, User
from backend.audit import Actor
from backend.checklists.models import Checklist
from backend.enforcement.models import Case
from backend.errors import ErrorCode, NotFound, ValidationFailed
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard
from backend.inspections.models import Inspection
from backend.planning.models import Draw, Plan, Task
from backend.vocabulary import AGENCY_STAFF, Role

MIN_OFFICERS = 2  # 行政处罚法 第四十二条: 执法人员不得少于两人


def agency_subtree_clause(actor: Actor, path_col: Any = Agency.path) -> Any:
    """Agencies the actor may act over: admins all, agency staff their agency and its sub-agencies."""
    if actor.role == Role.admin:
        return true()
    if actor.role in AGENCY_STAFF and actor.agency_path:
        return path_col.startswith(actor.agency_path, autoescape=True)
    return false()


def enterprise_clause(actor: Actor) -> Any:
    """A filter on Enterprise (joined with its Agency) for the enterprises the actor may see."""
    if actor.role == Role.enterprise:
        return Enterprise.id == actor.enterprise_id if actor.enterprise_id else false()
    return agency_subtree_clause(actor)


def _enterprises(actor: Actor) -> Select[Any]:
    return select(Enterprise).join(Agency, col(Agency.id) == col(Enterprise.agency_id)).where(enterprise_clause(actor))


def _agencies(actor: Actor) -> Select[Any]:
    if actor.role == Role.enterprise:  # the agency that supervises it
        return select(Agency).join(Enterprise, col(Enterprise.agency_id) == col(Agency.id)).where(col(Enterprise.id) == actor.enterprise_id)
    return select(Agency).where(agency_subtree_clause(actor))


def _users(actor: Actor) -> Select[Any]:
    if actor.role == Role.admin:
        return select(User)
    if actor.role == Role.enterprise:
        return select(User).where(col(User.id) == actor.user_id)
    return select(User).join(Agency, col(Agency.id) == col(User.agency_id)).where(agency_subtree_clause(actor))


def _cases(actor: Actor) -> Select[Any]:
    """A case belongs to the agency that opened it; its enterprise sees it too."""
    if actor.role == Role.enterprise:
        return select(Case).where(col(Case.enterprise_id) == actor.enterprise_id)
    return select(Case).join(Agency, col(Agency.id) == col(Case.agency_id)).where(agency_subtree_clause(actor))


def _of_plan(model: Any) -> Callable[[Actor], Select[Any]]:
    """Plans, and the draws and tasks made from them, belong to the plan's agency: its staff and those above see them
    (never the enterprises: a task announced is an inspection announced)."""

    def statement(actor: Actor) -> Select[Any]:
        query = select(model)
        if model is not Plan:
            query = query.join(Plan, col(Plan.id) == model.plan_id)
        return query.join(Agency, col(Agency.id) == col(Plan.agency_id)).where(agency_subtree_clause(actor))

    return statement


def _of_enterprise(model: Any) -> Callable[[Actor], Select[Any]]:
    def statement(actor: Actor) -> Select[Any]:
        return (
            select(model)
            .join(Enterprise, col(Enterprise.id) == model.enterprise_id)
            .join(Agency, col(Agency.id) == col(Enterprise.agency_id))
            .where(enterprise_clause(actor))
        )

    return statement


def _published_checklists(_actor: Actor) -> Select[Any]:
    return select(Checklist)  # published national and routine lists are for every logged-in user


READABLE: dict[type, Callable[[Actor], Select[Any]]] = {
    Enterprise: _enterprises,
    Agency: _agencies,
    User: _users,
    Case: _cases,
    Inspection: _of_enterprise(Inspection),
    Hazard: _of_enterprise(Hazard),
    Evidence: _of_enterprise(Evidence),
    Accident: _of_enterprise(Accident),
    Checklist: _published_checklists,
    Plan: _of_plan(Plan),
    Draw: _of_plan(Draw),
    Task: _of_plan(Task),
}
# what an id of each aggregate is called, and the code an absent (or out-of-scope) one answers with
NOT_FOUND: dict[type, tuple[str, ErrorCode]] = {
    Enterprise: ("enterprise", ErrorCode.ENTERPRISE_NOT_FOUND),
    Agency: ("agency", ErrorCode.AGENCY_NOT_FOUND),
    User: ("user", ErrorCode.USER_NOT_FOUND),
    Case: ("case", ErrorCode.CASE_NOT_FOUND),
    Inspection: ("inspection", ErrorCode.INSPECTION_NOT_FOUND),
    Hazard: ("hazard", ErrorCode.HAZARD_NOT_FOUND),
    Evidence: ("evidence", ErrorCode.EVIDENCE_NOT_FOUND),
    Checklist: ("checklist", ErrorCode.CHECKLIST_NOT_FOUND),
    Plan: ("plan", ErrorCode.PLAN_NOT_FOUND),
    Draw: ("draw", ErrorCode.DRAW_NOT_FOUND),
    Task: ("task", ErrorCode.TASK_NOT_FOUND),
    Accident: ("accident", ErrorCode.ACCIDENT_NOT_FOUND),
}


def readable(actor: Actor, model: type) -> Select[Any]:
    """SELECT the rows of `model` the actor may read: where every query about that aggregate starts."""
    return READABLE[model](actor)


def lockable(actor: Actor, model: type) -> Select[Any]:
    """The same rows, locked for the rest of the unit of work (PostgreSQL) and re-read from the database."""
    return readable(actor, model).with_for_update(of=model).execution_options(populate_existing=True)


def missing(model: type, ids: Sequence[Any], field: str | None) -> NotFound | ValidationFailed:
    name, code = NOT_FOUND[model]
    shown = ", ".join(str(i) for i in ids)
    if field:
        return ValidationFailed(f"{name} not found: {shown}", code=code, field=field)
    return NotFound(f"{name} {shown} not found", code=code)


async def one(
    session: AsyncSession,
    actor: Actor,
    model: type,
    row_id: uuid.UUID,
    *,
    field: str | None = None,
    lock: bool = False,
    options: Iterable[Any] = (),
    where: Iterable[Any] = (),
) -> Any:
    """The row, if the actor may read it (and it meets `where`); else `404`, or `422` naming `field` for a body id."""
    statement = lockable(actor, model) if lock else readable(actor, model).execution_options(populate_existing=True)
    statement = statement.where(model.id == row_id, *where).options(*options)  # type: ignore[attr-defined]
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        raise missing(model, [row_id], field)
    return row


async def many(
    session: AsyncSession, actor: Actor, model: type, ids: Iterable[uuid.UUID | str], *, field: str, where: Iterable[Any] = ()
) -> list[Any]:
    """The rows for these body ids, in the order given, without repeats; `422` naming `field` for any the actor may
    not read (or that fail `where`), listing them, whether they exist elsewhere or not at all."""
    wanted = list(dict.fromkeys(uuid.UUID(str(i)) for i in ids))
    if not wanted:
        return []
    statement = readable(actor, model).where(model.id.in_(wanted), *where)  # type: ignore[attr-defined]
    rows = {row.id: row for row in (await session.execute(statement)).scalars()}
    absent = [i for i in wanted if i not in rows]
    if absent:
        raise missing(model, absent, field)
    return [rows[i] for i in wanted]


async def agency_path_of_enterprise(session: AsyncSession, enterprise_id: uuid.UUID) -> str:
    """The path of the agency that supervises the enterprise: who may see its data starts from here."""
    query = (
        select(col(Agency.path)).join(Enterprise, col(Enterprise.agency_id) == col(Agency.id)).where(col(Enterprise.id) == enterprise_id)
    )
    return (await session.execute(query)).scalar_one()


async def supervising_officers(
    session: AsyncSession, user_ids: list[uuid.UUID], enterprise_id: uuid.UUID, *, field: str, certified_at_least: int = 0
) -> list[User]:
    """The officers (active inspectors of an agency that supervises the enterprise) for a team or a case; 422 naming
    `field` for anyone else — an unknown id and a stranger answer alike — and when fewer than `certified_at_least`
    of them hold a certificate (执法证)."""
    enterprise_path = await agency_path_of_enterprise(session, enterprise_id)
    rows = (
        await session.execute(
            select(User, col(Agency.path)).join(Agency, col(Agency.id) == col(User.agency_id)).where(col(User.id).in_(user_ids))
        )
    ).all()
    officers = [u for u, path in rows if u.role == Role.inspector and u.is_active and enterprise_path.startswith(path)]
    strangers = sorted(str(u) for u in set(user_ids) - {u.id for u in officers})
    if strangers:
        raise ValidationFailed(
            f"not inspectors of an agency supervising this enterprise: {strangers}", code=ErrorCode.INSPECTOR_NOT_ELIGIBLE, field=field
        )
    if sum(1 for u in officers if u.certificate_no) < certified_at_least:
        raise ValidationFailed(
            f"at least {certified_at_least} officers holding enforcement certificates are needed (行政处罚法 第四十二条)",
            code=ErrorCode.TWO_OFFICERS_REQUIRED,
            field=field,
        )
    return officers
