"""The dashboard's figures, each read through `scope.readable` so a leader sees exactly what the API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend import scope
from backend.accounts.models import Enterprise
from backend.audit import Actor
from backend.clock import local_today, now
from backend.console import words
from backend.enforcement.models import DEADLINE_COLUMNS, Case
from backend.hazards.models import Hazard
from backend.planning.service import PlanningService
from backend.settings import Settings
from backend.vocabulary import Category, HazardStatus, PlanStatus

PLANS_ON_DASHBOARD = 10

NEAR_DAYS = 7  # a case deadline within this many days is "near"
WEEKS = 12  # the overdue line's length


async def overdue_by_week(session: AsyncSession, actor: Actor, at: datetime | None = None) -> list[tuple[datetime, int]]:
    """Hazards past their deadline and not yet closed (到期未销号) at the end of each of the last WEEKS weeks, the
    last point being now: one pass over the hazards in scope, one count per point."""
    at = at or now()
    points = [at - timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    # only hazards past their deadline now that were not closed before the first point can count at any point
    readable = (
        scope.readable(actor, Hazard)
        .where(
            col(Hazard.deadline) < at,
            col(Hazard.status) != HazardStatus.reported,
            or_(col(Hazard.closed_at).is_(None), col(Hazard.closed_at) > points[0]),
        )
        .subquery()
    )
    query = select(
        *[
            func.count()
            .filter(
                and_(
                    readable.c.deadline < point,
                    readable.c.created_at <= point,
                    or_(readable.c.closed_at.is_(None), readable.c.closed_at > point),
                    readable.c.status != HazardStatus.reported,
                )
            )
            .label(f"p{i}")
            for i, point in enumerate(points)
        ]
    ).select_from(readable)
    row = (await session.execute(query)).one()
    return list(zip(points, [int(v or 0) for v in row], strict=True))


@dataclass
class NearDeadline:
    case_id: Any
    title: str
    enterprise: str
    status: str
    step: str
    due_at: datetime
    overdue: bool


async def near_deadlines(session: AsyncSession, actor: Actor, limit: int = 20) -> list[NearDeadline]:
    """Steps of cases in scope still to be taken whose deadline is within NEAR_DAYS days or already passed, soonest
    first; one query per step, each on that step's partial index of open steps."""
    at = now()
    found: list[NearDeadline] = []
    cases = scope.readable(actor, Case).subquery()
    for step, (due_column, _met, _statuses) in DEADLINE_COLUMNS.items():
        due = getattr(cases.c, due_column)
        query = (
            select(cases.c.id, cases.c.title, cases.c.status, due, col(Enterprise.name))
            .join(Enterprise, col(Enterprise.id) == cases.c.enterprise_id)
            .where(_pending(cases, step))
            .where(due < at + timedelta(days=NEAR_DAYS))
            .order_by(due)
            .limit(limit)
        )
        for case_id, title, status, due_at, enterprise in (await session.execute(query)).all():
            found.append(NearDeadline(case_id, title, enterprise, status, step, due_at, due_at < at))
    found.sort(key=lambda d: d.due_at)
    return found[:limit]


def _pending(cases: Any, step: str) -> Any:
    due, met, statuses = DEADLINE_COLUMNS[step]
    return and_(cases.c.status.in_(statuses), getattr(cases.c, met).is_(None), getattr(cases.c, due).is_not(None))


@dataclass
class PlanProgress:
    label: str
    planned: int
    done: int


async def plan_progress(session: AsyncSession, actor: Actor, settings: Settings) -> list[PlanProgress]:
    """This year's approved inspection plans in the caller's scope (双随机、一公开), one bar per plan rule: tasks drawn
    and tasks done. At most `PLANS_ON_DASHBOARD` plans, the newest first, each one grouped count."""
    planning = PlanningService(session, actor, settings)
    plans = await planning.list_plans(local_today().year, PlanStatus.approved, None, PLANS_ON_DASHBOARD)
    bars = []
    for plan in plans.items:
        progress = await planning.progress(plan.id)
        for rule in progress.rules:
            what = words.TOPICS.get(str(rule.topic), "") if rule.topic else ""
            label = f"{plan.title} · {'重点' if rule.category == Category.key else '一般'}{what}"
            bars.append(PlanProgress(label, rule.planned, rule.done))
    return bars
