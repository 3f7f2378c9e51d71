"""`emit()`: the one way an event enters the outbox, in the caller's transaction.

    from backend.integration.outbox import emit
    emit(session, "task.assigned", {"task": task_json}, subject_id=task.id)

The row is added to the session like any other change: it commits with the change it reports, or rolls back with
it. Nothing is sent here; the dispatcher (backend/integration/delivery.py) fans committed rows out to the webhooks.
Time-based events use `emit_once()`, which adds the row unless one with the same (event, subject, aspect, due
instant) exists, whoever wrote it and in whichever process."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.clock import now
from backend.db import upsert_into
from backend.integration.models import EventOutbox

EMITTED_KEY = "events_emitted"  # session.info: this transaction wrote outbox rows (the dispatcher is woken at commit)


class EventName(StrEnum):
    hazard_overdue = "hazard.overdue"
    hazard_closed = "hazard.closed"
    hazard_recurred = "hazard.recurred"
    lookback_due = "lookback.due"
    case_decided = "case.decided"
    case_deadline_near = "case.deadline_near"
    task_assigned = "task.assigned"


EVENT_NAMES = frozenset(EventName)


def event_row(event: str, data: dict[str, Any], subject_id: uuid.UUID | None, aspect: str, due_at: datetime | None) -> EventOutbox:
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown event {event!r}: add it to EventName in backend/integration/outbox.py")
    at = now()
    return EventOutbox(
        event=event,
        subject_id=subject_id,
        aspect=aspect,
        due_at=due_at,
        occurred_at=at,
        created_at=at,
        data=to_jsonable_python(data),
    )


def emit(session: AsyncSession | Session, event: str, data: dict[str, Any], *, subject_id: uuid.UUID | None = None) -> EventOutbox:
    """Add `event` with `data` (JSON-able: ids, instants and models are converted) to the caller's transaction."""
    row = event_row(event, data, subject_id, "", None)
    session.add(row)
    session.info[EMITTED_KEY] = True
    return row


async def emit_all(session: AsyncSession, event: str, items: list[tuple[uuid.UUID, dict[str, Any]]]) -> None:
    """`emit` for many subjects at once (a draw's thousands of `task.assigned`), as multi-row INSERTs."""
    columns = [c.name for c in EventOutbox.__table__.columns]  # type: ignore[attr-defined]
    rows = []
    for subject_id, data in items:
        row = event_row(event, data, subject_id, "", None)
        rows.append({name: getattr(row, name) for name in columns if getattr(row, name) is not None})
    for start in range(0, len(rows), 5000):
        await session.execute(insert(EventOutbox), rows[start : start + 5000])
    if rows:
        session.info[EMITTED_KEY] = True


async def emit_once(
    session: AsyncSession, event: str, data: dict[str, Any], *, subject_id: uuid.UUID, due_at: datetime, aspect: str = ""
) -> bool:
    """Add a time-based event unless it was raised already for this subject, aspect and due instant; True if added.

    INSERT ... ON CONFLICT DO NOTHING on the unique key: two processes raising the same event at once leave one row."""
    row = event_row(event, data, subject_id, aspect, due_at)
    values = {c.name: getattr(row, c.name) for c in EventOutbox.__table__.columns}  # type: ignore[attr-defined]
    statement = upsert_into(session.get_bind().dialect.name, EventOutbox).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    added = bool(getattr(result, "rowcount", 0))
    if added:
        session.info[EMITTED_KEY] = True
    return added
