"""Time-based events, raised exactly once however many processes run: hazard.overdue, lookback.due and
case.deadline_near.

Every process runs the scan each SCHEDULER_INTERVAL_SECONDS. On PostgreSQL a scan first takes a transaction-level
advisory lock with `pg_try_advisory_xact_lock`: while one process scans, the others skip their turn (on SQLite the
one process's `BEGIN IMMEDIATE` does the same). Exactly once does not rest on the lock alone: each event carries its
key (event, subject, aspect, due instant), unique in the outbox, the candidates are the rows with no event for that
key yet, and the insert is `ON CONFLICT DO NOTHING`. A deadline moved (a new order, a recurrence, an extension) is a
new due instant, so it raises its own event once more; a process that was down catches up at its next scan.

- hazard.overdue: a hazard still rectifying after its deadline.
- lookback.due: a closed hazard whose look-back (回头看) day has come.
- case.deadline_near: a case step still to be taken (the steps of GET /cases/{id} `deadlines`) whose deadline is
  CASE_DEADLINE_NEAR_DAYS away or nearer (or passed), one event per step and due instant; `aspect` names the step.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.clock import now
from backend.db import SQLITE_WRITE, is_postgres, upsert_into
from backend.enforcement.models import DEADLINE_COLUMNS, Case, pending_clause
from backend.enforcement.service import case_summary
from backend.hazards.models import Hazard
from backend.hazards.service import hazard_out
from backend.integration.models import EventOutbox
from backend.integration.outbox import EMITTED_KEY, EventName, event_row
from backend.settings import Settings
from backend.vocabulary import HazardStatus

logger = logging.getLogger("backend.scheduler")

# pg_try_advisory_xact_lock(int, int): the scheduler's key space, apart from the login throttle's
ADVISORY_NAMESPACE = 0x736368  # "sch"
BATCH = 500


def _not_raised(event: str, subject: Any, due: Any, aspect: str = "") -> Any:
    return ~exists().where(
        col(EventOutbox.event) == event,
        col(EventOutbox.subject_id) == subject,
        col(EventOutbox.aspect) == aspect,
        col(EventOutbox.due_at) == due,
    )


class Scheduler:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self._failing = False

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
                self._failing = False
            except Exception:
                if not self._failing:
                    logger.warning("scheduler: the scan failed; trying again next interval", exc_info=True)
                self._failing = True
            await asyncio.sleep(self.settings.scheduler_interval_seconds)

    async def scan(self, at: datetime | None = None) -> int | None:
        """Raise what has come due by `at` (now); the number of events raised, None when another process is scanning."""
        async with self.sessionmaker(execution_options=SQLITE_WRITE) as session, session.begin():
            if is_postgres(session):
                got = (await session.execute(select(func.pg_try_advisory_xact_lock(ADVISORY_NAMESPACE, 1)))).scalar_one()
                if not got:
                    return None
            at = at or now()
            raised = await self._hazards_overdue(session, at)
            raised += await self._lookbacks_due(session, at)
            raised += await self._case_deadlines(session, at)
        return raised

    async def _insert(self, session: AsyncSession, rows: list[EventOutbox]) -> int:
        if not rows:
            return 0
        values = [{c.name: getattr(r, c.name) for c in EventOutbox.__table__.columns} for r in rows]  # type: ignore[attr-defined]
        result = await session.execute(upsert_into(session.get_bind().dialect.name, EventOutbox).values(values).on_conflict_do_nothing())
        session.info[EMITTED_KEY] = True
        return int(getattr(result, "rowcount", 0) or 0)

    async def _batches(self, session: AsyncSession, query: Any, make: Any) -> int:
        raised = 0
        while True:
            found = list((await session.execute(query.limit(BATCH))).scalars())
            raised += await self._insert(session, [make(row) for row in found])
            if len(found) < BATCH:
                return raised

    async def _hazards_overdue(self, session: AsyncSession, at: datetime) -> int:
        return await self._hazards_due(session, EventName.hazard_overdue, HazardStatus.rectifying, "deadline", at, strictly=True)

    async def _lookbacks_due(self, session: AsyncSession, at: datetime) -> int:
        return await self._hazards_due(session, EventName.lookback_due, HazardStatus.closed, "lookback_due_at", at, strictly=False)

    async def _hazards_due(self, session: AsyncSession, event: str, status: str, column: str, at: datetime, *, strictly: bool) -> int:
        """Hazards in `status` whose instant in `column` has come (passed, when `strictly`) and has no `event` yet."""
        due = col(getattr(Hazard, column))
        query = select(Hazard).where(col(Hazard.status) == status, due < at if strictly else due <= at, _not_raised(event, Hazard.id, due))

        def make(hazard: Hazard) -> EventOutbox:
            instant = getattr(hazard, column)
            return event_row(event, {"hazard": hazard_out(hazard).model_dump(mode="json"), column: instant}, hazard.id, "", instant)

        return await self._batches(session, query, make)

    async def _case_deadlines(self, session: AsyncSession, at: datetime) -> int:
        horizon = at + timedelta(days=self.settings.case_deadline_near_days)
        raised = 0
        for step, (due_column, _met, _statuses) in DEADLINE_COLUMNS.items():
            due = getattr(Case, due_column)
            query = select(Case).where(
                text(pending_clause(step)), col(due) <= horizon, _not_raised(EventName.case_deadline_near, Case.id, due, step)
            )

            def make(case: Case, step: str = step, due_column: str = due_column) -> EventOutbox:
                due_at = getattr(case, due_column)
                data = {"case": case_summary(case).model_dump(mode="json"), "step": step, "due_at": due_at, "overdue": due_at < at}
                return event_row(EventName.case_deadline_near, data, case.id, step, due_at)

            raised += await self._batches(session, query, make)
        return raised
