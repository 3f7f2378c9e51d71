"""What each process runs in the background of its lifespan: the webhook dispatcher and the scheduler.

Both are safe with any number of processes (row claims with SKIP LOCKED, an advisory lock and unique keys: see
delivery.py and scheduler.py), so every process runs them and none is special. `JOBS=false` turns them off in a
process (the tests drive them step by step)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from backend.integration.delivery import Dispatcher
from backend.integration.scheduler import Scheduler
from backend.settings import Settings

logger = logging.getLogger("backend")

STARTUP_LOCK = (0x737461, 0)  # pg_advisory_xact_lock(int, int) key of start-up: "sta"


class BackgroundJobs:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.dispatcher = Dispatcher(sessionmaker, settings)
        self.scheduler = Scheduler(sessionmaker, settings)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="webhook-dispatcher"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
        ]

    async def stop(self) -> None:
        """Cancel both; a delivery cut short comes due again when its claim's lease ends (in any process)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@contextlib.asynccontextmanager
async def startup_turn(engine: AsyncEngine) -> AsyncIterator[None]:
    """On PostgreSQL, one process at a time through start-up's writes (the first admin, the checklists): a
    transaction-level advisory lock held by an open transaction on a connection of its own (so it works through a
    transaction-pooling PgBouncer too). SQLite serves one process only."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as connection, connection.begin():
        await connection.execute(select(func.pg_advisory_xact_lock(*STARTUP_LOCK)))
        yield
