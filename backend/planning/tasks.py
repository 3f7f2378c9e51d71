"""Tasks drawn from a plan: their workflow, how they reach the inspectors' phones, and the checks an inspection opened
from one passes. The inspections service calls `claim`, `started` and `completed`; nothing else moves a task."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import col

from backend import scope
from backend.accounts.models import Agency
from backend.audit import Actor
from backend.clock import now
from backend.errors import Conflict, ErrorCode, ValidationFailed
from backend.planning.models import Plan, Task
from backend.planning.schemas import TaskOut
from backend.sync.service import register_serializer
from backend.unit_of_work import track
from backend.vocabulary import Role, TaskStatus
from backend.workflow import Move, Workflow

INSPECTORS = frozenset({Role.inspector})
TASK_WORKFLOW = Workflow(
    "task",
    None,
    "task_id",
    {
        TaskStatus.assigned: {"inspection_started": Move(TaskStatus.in_progress, INSPECTORS)},
        TaskStatus.in_progress: {"inspection_submitted": Move(TaskStatus.done, INSPECTORS)},
    },
)


def feed_of_plan(session: Session, row: Any) -> tuple[uuid.UUID | None, str | None]:
    """A task reaches the staff of the plan's agency and those above it (its drawn inspectors among them), never the
    enterprise: a 双随机 inspection is not announced to the enterprise by the feed."""
    query = select(col(Agency.path)).join(Plan, col(Plan.agency_id) == col(Agency.id)).where(col(Plan.id) == row.plan_id)
    return None, session.execute(query).scalar_one()


track(Task, "task", feed=feed_of_plan)


def task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(task, from_attributes=True)


async def claim(session: AsyncSession, actor: Actor, task_id: uuid.UUID, enterprise_id: uuid.UUID, inspector_ids: list[uuid.UUID]) -> Task:
    """The task an inspection is opened from, locked: of the inspection's enterprise, drawn for the caller and for
    every other drawn inspector on the team, and not started yet."""
    task: Task = await scope.one(session, actor, Task, task_id, field="task_id", lock=True)
    if task.enterprise_id != enterprise_id:
        raise ValidationFailed(
            f"task {task_id} is for another enterprise ({task.enterprise_id})", code=ErrorCode.TASK_MISMATCH, field="enterprise_id"
        )
    drawn = {uuid.UUID(i) for i in task.inspector_ids}
    if actor.user_id not in drawn or not drawn <= set(inspector_ids):
        raise ValidationFailed(
            f"task {task_id} is for the inspectors drawn for it: {sorted(str(i) for i in drawn)}, the caller among them",
            code=ErrorCode.TASK_MISMATCH,
            field="inspector_ids",
        )
    if task.status != TaskStatus.assigned:
        raise Conflict(
            f"task {task_id} is {task.status} with inspection {task.inspection_id}",
            code=ErrorCode.TASK_TAKEN,
            inspection_id=str(task.inspection_id) if task.inspection_id else None,
        )
    return task


def started(session: AsyncSession, actor: Actor, task: Task, inspection_id: uuid.UUID) -> None:
    task.inspection_id, task.started_at = inspection_id, now()
    TASK_WORKFLOW.transition(session, task, "inspection_started", actor, data={"inspection_id": inspection_id})


async def completed(session: AsyncSession, actor: Actor, inspection_id: uuid.UUID) -> None:
    """The inspection was submitted: its task, if it came from one, is done."""
    query = select(Task).where(col(Task.inspection_id) == inspection_id).with_for_update().execution_options(populate_existing=True)
    task = (await session.execute(query)).scalar_one_or_none()
    if task is None or task.status != TaskStatus.in_progress:
        return
    task.done_at = now()
    TASK_WORKFLOW.transition(session, task, "inspection_submitted", actor, data={"inspection_id": inspection_id})


async def _serialize(session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    query = select(Task).where(col(Task.id).in_([uuid.UUID(i) for i in ids]))
    return {str(t.id): task_out(t).model_dump(mode="json") for t in (await session.execute(query)).scalars()}


register_serializer("task", _serialize)
