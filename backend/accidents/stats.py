"""The supervisors' accident figures (GET /stats/accidents), in the caller's scope: accidents by level and status,
their toll, and the evaluations due, overdue and completed, with what they found of the measures."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from backend.accidents.models import Accident, AccidentFinding
from backend.accidents.schemas import AccidentStatsRow
from backend.accidents.service import DUE_NOTICE, OPEN
from backend.audit import Actor
from backend.clock import now
from backend.hazards.stats import figures_query, name_groups
from backend.vocabulary import AccidentLevel, AccidentStatus, FindingOutcome


class AccidentGroupBy(StrEnum):
    level = "level"
    status = "status"
    agency = "agency"
    enterprise = "enterprise"


def _count_where(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


async def accident_stats(session: AsyncSession, actor: Actor, group_by: str) -> list[AccidentStatsRow]:
    at = now()
    is_open = col(Accident.status).in_(OPEN)
    counts = figures_query(
        Accident,
        actor,
        group_by,
        func.count().label("accidents"),
        *[_count_where(col(Accident.level) == level).label(f"level_{level}") for level in AccidentLevel],
        *[_count_where(col(Accident.status) == status).label(f"status_{status}") for status in AccidentStatus],
        func.sum(Accident.deaths).label("deaths"),
        func.sum(Accident.injuries).label("injuries"),
        func.sum(Accident.direct_loss).label("direct_loss"),
        _count_where(and_(is_open, col(Accident.evaluation_due) >= at, col(Accident.evaluation_due) <= at + DUE_NOTICE)).label("due_soon"),
        _count_where(and_(is_open, col(Accident.evaluation_due) < at)).label("overdue"),
    ).group_by(text("key"))
    # the latest finding of each measure counts
    ranked = select(
        col(AccidentFinding.accident_id),
        col(AccidentFinding.outcome),
        func.row_number()
        .over(
            partition_by=col(AccidentFinding.measure_id), order_by=(col(AccidentFinding.created_at).desc(), col(AccidentFinding.id).desc())
        )
        .label("rank"),
    ).subquery()
    outcomes = (
        figures_query(Accident, actor, group_by, ranked.c.outcome, func.count().label("n"))
        .join(ranked, ranked.c.accident_id == Accident.id)
        .where(ranked.c.rank == 1)
        .group_by(text("key"), ranked.c.outcome)
    )
    groups: dict[str, AccidentStatsRow] = {}
    for row in (await session.execute(counts)).mappings():
        by_level = {str(level): int(row[f"level_{level}"] or 0) for level in AccidentLevel}
        by_status = {str(status): int(row[f"status_{status}"] or 0) for status in AccidentStatus}
        groups[str(row["key"])] = AccidentStatsRow(
            key=str(row["key"]),
            accidents=int(row["accidents"]),
            by_level={k: n for k, n in by_level.items() if n},
            by_status={k: n for k, n in by_status.items() if n},
            deaths=int(row["deaths"] or 0),
            injuries=int(row["injuries"] or 0),
            direct_loss=int(row["direct_loss"] or 0),
            evaluations_due_soon=int(row["due_soon"] or 0),
            evaluations_overdue=int(row["overdue"] or 0),
            evaluations_completed=by_status[AccidentStatus.evaluated],
            findings={},
        )
    for key, outcome, n in (await session.execute(outcomes)).all():
        if str(key) in groups:
            groups[str(key)].findings[str(FindingOutcome(outcome))] = int(n)
    await name_groups(session, group_by, groups)
    return sorted(groups.values(), key=lambda g: (-g.accidents, g.key or ""))
