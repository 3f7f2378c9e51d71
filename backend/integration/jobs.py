"""What each API process runs beside it: the webhook dispatcher and the scheduler.

Both are safe with any number of processes (row claims with SKIP LOCKED, an advisory lock and unique keys: see
delivery.py and scheduler.py), so every API process runs them and none is special. `JOBS=false` turns them off
(the tests drive them step by step).

They run in a child process of their own (started and stopped by the API process's lifespan), at a lower CPU
priority (nice +10), with their own event loop and a small connection pool: however many deliveries are going out,
a request never waits behind them, neither on the event loop nor for the interpreter lock, and when the cores are
busy the requests get them first (bench/integration.py measures the API's latency while 10,000 events fan out). A
commit that wrote events wakes the child at once through a shared event; otherwise it polls every
WEBHOOK_POLL_SECONDS. The child ends with its parent: on the lifespan's stop, or on its own when the parent is
gone (killed), and whatever it had claimed comes due again for the other processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import AsyncIterator
from multiprocessing.synchronize import Event as ProcessEvent

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.settings import Settings

logger = logging.getLogger("backend")

STARTUP_LOCK = (0x737461, 0)  # pg_advisory_xact_lock(int, int) key of start-up: "sta"
POOL = {"pool_size": 4, "max_overflow": 4}  # the jobs' own connections, apart from the requests' pool
NICENESS = 10
STOP_SECONDS = 15


class BackgroundJobs:
    """The jobs' child process, seen from the API process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        context = multiprocessing.get_context("spawn")
        self._context = context
        self._wake = context.Event()
        self._stop = context.Event()
        self._process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        from backend.integration import delivery

        self._process = self._context.Process(
            target=run_jobs, args=(self.settings, self._wake, self._stop, os.getpid()), name="safety-jobs", daemon=True
        )
        self._process.start()
        delivery.wake_other_process = self._wake.set  # a request's commit with events wakes the child

    async def stop(self) -> None:
        """Stop the child; a delivery cut short comes due again when its claim's lease ends (in any process)."""
        process, self._process = self._process, None
        if process is None:
            return
        from backend.integration import delivery

        delivery.wake_other_process = None
        self._stop.set()
        self._wake.set()
        await asyncio.to_thread(process.join, STOP_SECONDS)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)


def run_jobs(settings: Settings, wake: ProcessEvent, stop: ProcessEvent, parent: int) -> None:
    """The child process: the dispatcher and the scheduler until told to stop or the parent is gone."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(asctime)s - %(name)s - %(message)s")
    asyncio.run(_jobs(settings, wake, stop, parent))


async def _jobs(settings: Settings, wake: ProcessEvent, stop: ProcessEvent, parent: int) -> None:
    import backend.tables  # noqa: F401 - every model, for the relationships the queries load
    from backend.db import make_engine, make_sessionmaker
    from backend.integration.delivery import Dispatcher
    from backend.integration.scheduler import Scheduler

    engine = make_engine(settings.database_url, connect_timeout=settings.database_connect_timeout, **POOL)
    sessionmaker = make_sessionmaker(engine)
    dispatcher = Dispatcher(sessionmaker, settings)
    tasks = [
        asyncio.create_task(dispatcher.run(), name="webhook-dispatcher"),
        asyncio.create_task(Scheduler(sessionmaker, settings).run(), name="scheduler"),
    ]
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def relay() -> None:  # a thread turning the parent's wake-ups into the dispatcher's, and noticing the end
        while not stop.is_set() and os.getppid() == parent:
            if wake.wait(1):
                wake.clear()
                loop.call_soon_threadsafe(dispatcher.wake)
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=relay, name="jobs-wake", daemon=True).start()
    try:
        await done.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await engine.dispose()


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
