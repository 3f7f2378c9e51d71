"""The supervisors' hazard figures (GET /stats/hazards), in the caller's scope."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise
from backend.audit import Actor
from backend.clock import now
from backend.hazards.models import Hazard, HazardTally
from backend.hazards.schemas import StatsRow
from backend.scope import readable
from backend.vocabulary import HazardStatus


class GroupBy(StrEnum):
    topic = "topic"
    level = "level"
    status = "status"
    agency = "agency"
    enterprise = "enterprise"


def _visible_enterprise_ids(actor: Actor) -> Any:
    return readable(actor, Enterprise).with_only_columns(col(Enterprise.id))


def _group_key(table: Any, group_by: str) -> Any:
    return Enterprise.agency_id if group_by == "agency" else getattr(table, {"enterprise": "enterprise_id"}.get(group_by, group_by))


def figures_query(table: Any, actor: Actor, group_by: str, *columns: Any) -> Any:
    """SELECT key, *columns FROM table in the actor's scope (joined with the enterprise when grouping by agency)."""
    query = select(_group_key(table, group_by).label("key"), *columns).select_from(table)
    if group_by == "agency":
        query = query.join(Enterprise, Enterprise.id == table.enterprise_id)
    if actor.role != "admin":
        query = query.where(table.enterprise_id.in_(_visible_enterprise_ids(actor)))
    return query


async def hazard_stats(session: AsyncSession, actor: Actor, group_by: str) -> list[StatsRow]:
    """Counts by status, overdue, look-back outcomes and median days to close per group, in the caller's scope.

    Counts and medians come from the running tally (a few rows per enterprise); only "overdue", which changes with
    the clock, is counted from the hazards themselves, through a partial index on the open ones."""
    t = HazardTally
    per_status = [func.sum(case((col(t.status) == status, t.hazards), else_=0)).label(status) for status in HazardStatus]
    counts = figures_query(
        t,
        actor,
        group_by,
        *per_status,
        func.sum(t.recurrences).label("recurrences"),
        func.sum(case((col(t.recurred), t.hazards), else_=0)).label("recurred"),
    ).group_by(text("key"))
    overdue = (
        figures_query(Hazard, actor, group_by, func.count().label("n"))
        .where(col(Hazard.status) == HazardStatus.rectifying, col(Hazard.deadline) < now())
        .group_by(text("key"))
    )
    # the exact median of whole days to close, from the tally's histogram: the lower and upper middle values
    days = (
        figures_query(t, actor, group_by, col(t.close_days).label("d"), func.sum(t.hazards).label("n"))
        .where(col(t.close_days) >= 0)
        .group_by(text("key"), col(t.close_days))
        .subquery()
    )
    running = (
        select(
            days.c.key,
            days.c.d,
            func.sum(days.c.n).over(partition_by=days.c.key, order_by=days.c.d).label("cum"),
            func.sum(days.c.n).over(partition_by=days.c.key).label("total"),
        )
        .where(days.c.n > 0)
        .subquery()
    )
    medians = select(
        running.c.key,
        func.min(case((running.c.cum * 2 >= running.c.total, running.c.d))).label("lower"),
        func.min(case((running.c.cum * 2 > running.c.total, running.c.d))).label("upper"),
    ).group_by(running.c.key)

    groups: dict[str, StatsRow] = {}
    for row in (await session.execute(counts)).all():
        by_status = {str(status): int(getattr(row, status) or 0) for status in HazardStatus}
        by_status = {status: n for status, n in by_status.items() if n}
        if not by_status:
            continue
        groups[str(row.key)] = StatsRow(
            key=str(row.key),
            total=sum(by_status.values()),
            by_status=by_status,
            overdue=0,
            median_days_to_close=None,
            lookbacks_held=by_status.get("verified", 0),
            lookbacks_recurred=int(row.recurrences or 0),
            hazards_recurred=int(row.recurred or 0),
        )
    for key, n in (await session.execute(overdue)).all():
        if str(key) in groups:
            groups[str(key)].overdue = int(n)
    for key, lower, upper in (await session.execute(medians)).all():
        if str(key) in groups and lower is not None:
            groups[str(key)].median_days_to_close = (lower + upper) / 2
    await name_groups(session, group_by, groups)
    return sorted(groups.values(), key=lambda g: (-g.total, g.key or ""))


async def name_groups(session: AsyncSession, group_by: str, groups: dict[str, Any]) -> None:
    """Give each group of an agency or an enterprise its name."""
    named: dict[str, type[Agency] | type[Enterprise]] = {"agency": Agency, "enterprise": Enterprise}
    names = named.get(group_by)
    if names is not None and groups:
        query = select(col(names.id), col(names.name)).where(col(names.id).in_([uuid.UUID(k) for k in groups]))
        for row_id, name in (await session.execute(query)).all():
            groups[str(row_id)].name = name
