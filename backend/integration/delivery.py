"""The dispatcher: fans committed events out to the webhooks and delivers them, in the background of every process.

- Fan-out: committed outbox rows not yet fanned out are claimed with `FOR UPDATE SKIP LOCKED` (on SQLite the one
  process's `BEGIN IMMEDIATE` serialises it), one delivery row per subscribed active webhook is inserted (unique per
  webhook and event, `ON CONFLICT DO NOTHING`) and the rows are marked, all in one transaction.
- Delivery: one lane per webhook per process, so a slow or dead receiver only ever holds its own lane. A lane claims
  up to WEBHOOK_CONCURRENCY due deliveries (`SKIP LOCKED`: two processes never claim the same row), stamps each with
  a claim token and a lease (the attempt's timeout and a margin) and commits; then sends them at once, each bounded
  by WEBHOOK_TIMEOUT_SECONDS from connect to the status line, without holding a database connection; then records
  the outcomes in one transaction, each only if its claim still stands (a redelivery in between wins).
- A 2xx is delivered. Anything else (another status, a timeout, a refused or closed connection, an address that is
  not allowed) is retried after WEBHOOK_BACKOFF_BASE_SECONDS, doubling up to WEBHOOK_BACKOFF_MAX_SECONDS (±10 %
  jitter), until WEBHOOK_RETRY_WINDOW_SECONDS have passed since the first attempt; the attempt at or after the window's
  end that fails marks it `failed`, listed under `GET /webhooks/{id}/deliveries?status=failed`.
- A process that stops mid-delivery (a restart, a crash) loses nothing: its claimed rows come due again when their
  lease ends, and another process (or it, restarted) sends them. Receivers get each event at least once and
  de-duplicate on X-Event-Id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlmodel import col

from backend.clock import now
from backend.db import SQLITE_WRITE, upsert_into
from backend.integration.models import EventOutbox, Webhook, WebhookDelivery
from backend.integration.outbox import EMITTED_KEY
from backend.integration.receivers import SecretBox, event_body, resolved_refusal, signature
from backend.settings import Settings

logger = logging.getLogger("backend.webhooks")

FAN_OUT_BATCH = 500
LEASE_MARGIN = timedelta(seconds=5)
ERROR_LENGTH = 500
USER_AGENT = "safety-enforcement-webhooks/1"

_dispatchers: weakref.WeakSet[Dispatcher] = weakref.WeakSet()
# In an API process whose jobs run in a child process (backend/integration/jobs.py): how to wake the child.
wake_other_process: Callable[[], None] | None = None


def wake_dispatchers() -> None:
    """Tell the dispatchers (this process's, and the jobs' child process) that events or due deliveries were
    committed: no need to wait for the poll."""
    if wake_other_process is not None:
        wake_other_process()
    try:
        dispatchers = list(_dispatchers)
    except RuntimeError:  # the set changed in another thread meanwhile: the next poll finds the work
        return
    for dispatcher in dispatchers:
        dispatcher.wake()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(EMITTED_KEY, None):
        wake_dispatchers()


@event.listens_for(Session, "after_soft_rollback")
def _forget_emitted(session: Session, previous_transaction: Any) -> None:
    if not previous_transaction.nested:
        session.info.pop(EMITTED_KEY, None)


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones: base x 2^(n-1), at most the maximum, ±10 %."""
    seconds = min(settings.webhook_backoff_base_seconds * 2 ** min(attempts - 1, 40), settings.webhook_backoff_max_seconds)
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


@dataclass(frozen=True)
class Claimed:
    delivery_id: uuid.UUID
    claim: uuid.UUID
    attempts: int
    window_started_at: datetime
    body: bytes
    event_id: uuid.UUID
    event: str


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Receiver:
    id: uuid.UUID
    url: str
    secret: str | None  # None: sealed with another key (WEBHOOK_KEY or SECRET_KEY changed)


class Dispatcher:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.box = SecretBox(settings)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # where run() runs
        self._lanes: dict[uuid.UUID, Lane] = {}
        self._failing = False  # one log line per outage of the database, not one per poll
        _dispatchers.add(self)

    def wake(self) -> None:
        """From any thread (a request's commit wakes the jobs' thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake_here()
        else:
            loop.call_soon_threadsafe(self._wake_here)

    def _wake_here(self) -> None:
        self._wake.set()
        for lane in self._lanes.values():
            lane.wake()

    def _session(self) -> AsyncSession:
        return self.sessionmaker(execution_options=SQLITE_WRITE)

    async def run(self) -> None:
        """Until cancelled: fan out new events, keep one lane per active webhook, then wait for a wake-up or the poll."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                try:
                    await self.fan_out()
                    await self.refresh_lanes()
                    if self._failing:
                        logger.info("webhook dispatcher: the database answers again")
                    self._failing = False
                except Exception:
                    if not self._failing:
                        logger.warning("webhook dispatcher: cannot reach the database; retrying", exc_info=True)
                    self._failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_seconds)
        finally:
            await self.stop_lanes()

    async def stop_lanes(self) -> None:
        lanes, self._lanes = list(self._lanes.values()), {}
        for lane in lanes:
            await lane.stop()

    async def fan_out(self) -> int:
        """Turn every committed, not yet fanned-out event into deliveries; the number of events handled."""
        total = 0
        while True:
            handled = await self._fan_out_batch()
            total += handled
            if handled < FAN_OUT_BATCH:
                return total

    async def _fan_out_batch(self) -> int:
        async with self._session() as session, session.begin():
            query = (
                select(EventOutbox)
                .where(col(EventOutbox.fanned_out_at).is_(None))
                .order_by(col(EventOutbox.created_at))
                .limit(FAN_OUT_BATCH)
                .with_for_update(skip_locked=True)
            )
            events = list((await session.execute(query)).scalars())
            if not events:
                return 0
            hooks = list((await session.execute(select(Webhook).where(col(Webhook.active).is_(True)))).scalars())
            at = now()
            rows = [
                {
                    "id": uuid.uuid4(),
                    "webhook_id": hook.id,
                    "event_id": e.id,
                    "event": e.event,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": at,
                    "window_started_at": at,
                    "created_at": at,
                }
                for e in events
                for hook in hooks
                if e.event in hook.events
            ]
            dialect = session.get_bind().dialect.name
            for start in range(0, len(rows), 1000):
                await session.execute(upsert_into(dialect, WebhookDelivery).values(rows[start : start + 1000]).on_conflict_do_nothing())
            ids = [e.id for e in events]
            await session.execute(update(EventOutbox).where(col(EventOutbox.id).in_(ids)).values(fanned_out_at=at))
        if rows:
            for lane in self._lanes.values():
                lane.wake()
        return len(events)

    async def refresh_lanes(self) -> None:
        async with self.sessionmaker() as session:
            hooks = list((await session.execute(select(Webhook).where(col(Webhook.active).is_(True)))).scalars())
        active = {h.id for h in hooks}
        for webhook_id in [w for w in self._lanes if w not in active]:
            await self._lanes.pop(webhook_id).stop()
        for hook in hooks:
            lane = self._lanes.get(hook.id)
            receiver = Receiver(hook.id, hook.url, self.box.open(hook.secret_encrypted))
            if lane is None:
                self._lanes[hook.id] = lane = Lane(self, receiver)
                lane.start()
            else:
                lane.receiver = receiver

    async def deliver_once(self) -> int:
        """One round for tests and tools: fan out, then one claim-send-record step of every active webhook."""
        await self.fan_out()
        async with self.sessionmaker() as session:
            hooks = list((await session.execute(select(Webhook).where(col(Webhook.active).is_(True)))).scalars())
        sent = 0
        for hook in hooks:
            lane = Lane(self, Receiver(hook.id, hook.url, self.box.open(hook.secret_encrypted)))
            try:
                sent += await lane.step()
            finally:
                await lane.client.aclose()
        return sent


class Lane:
    """The deliveries of one webhook in this process: at most WEBHOOK_CONCURRENCY in flight, on a client of its own."""

    def __init__(self, dispatcher: Dispatcher, receiver: Receiver) -> None:
        self.dispatcher = dispatcher
        self.settings = dispatcher.settings
        self.receiver = receiver
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.webhook_timeout_seconds),
            limits=httpx.Limits(
                max_connections=self.settings.webhook_concurrency, max_keepalive_connections=self.settings.webhook_concurrency
            ),
            follow_redirects=False,
            trust_env=False,  # never through a proxy from the environment
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._address_checked: tuple[str, float, str | None] | None = None  # (url, when, refusal)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"webhook-lane-{self.receiver.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await self.step() == self.settings.webhook_concurrency:
                    continue  # a full batch: more may be due at once
            except Exception:
                logger.warning("webhook %s: a delivery round failed; retrying", self.receiver.id, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_seconds)

    async def step(self) -> int:
        """Claim the due deliveries (up to the concurrency), send them at once, record what happened; how many."""
        claimed = await self.claim()
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self.attempt(c) for c in claimed))
        await self.record(outcomes)
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        settings = self.settings
        async with self.dispatcher._session() as session, session.begin():
            at = now()
            query = (
                select(WebhookDelivery, EventOutbox)
                .join(EventOutbox, col(EventOutbox.id) == col(WebhookDelivery.event_id))
                .where(
                    col(WebhookDelivery.webhook_id) == self.receiver.id,
                    col(WebhookDelivery.status) == "pending",
                    col(WebhookDelivery.next_attempt_at) <= at,
                )
                .order_by(col(WebhookDelivery.next_attempt_at))
                .limit(settings.webhook_concurrency)
                .with_for_update(of=WebhookDelivery, skip_locked=True)
            )
            rows = list((await session.execute(query)).all())
            lease = at + timedelta(seconds=settings.webhook_timeout_seconds) * 2 + LEASE_MARGIN
            claimed = []
            for delivery, outbox in rows:
                token = uuid.uuid4()
                delivery.claim, delivery.attempts, delivery.next_attempt_at, delivery.last_attempt_at = (
                    token,
                    delivery.attempts + 1,
                    lease,
                    at,
                )
                claimed.append(
                    Claimed(delivery.id, token, delivery.attempts, delivery.window_started_at, event_body(outbox), outbox.id, outbox.event)
                )
        return claimed

    async def _refusal(self) -> str | None:
        """Whether the receiver's address may be reached now (what its name resolves to is checked once a minute)."""
        url = self.receiver.url
        cached = self._address_checked
        if cached is None or cached[0] != url or time.monotonic() - cached[1] > 60:
            cached = (url, time.monotonic(), await resolved_refusal(url, self.settings.webhook_allow_private))
            self._address_checked = cached
        return cached[2]

    async def attempt(self, claimed: Claimed) -> Outcome:
        if self.receiver.secret is None:
            return Outcome(claimed, None, "the stored secret cannot be decrypted with the current WEBHOOK_KEY/SECRET_KEY")
        refusal = await self._refusal()
        if refusal is not None:
            return Outcome(claimed, None, f"address refused: {refusal}")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Event-Id": str(claimed.event_id),
            "X-Event": claimed.event,
            "X-Delivery-Id": str(claimed.delivery_id),
            "X-Delivery-Attempt": str(claimed.attempts),
            "X-Timestamp": timestamp,
            "X-Signature": signature(self.receiver.secret, timestamp, claimed.body),
        }
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                async with self.client.stream("POST", self.receiver.url, content=claimed.body, headers=headers) as response:
                    status = response.status_code  # the body is not read: a receiver cannot make us hold megabytes
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(claimed, None, f"no answer within {self.settings.webhook_timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome(claimed, None, f"{type(exc).__name__}: {exc}"[:ERROR_LENGTH] or type(exc).__name__)
        return Outcome(claimed, status, None if 200 <= status < 300 else f"answered HTTP {status}")

    async def record(self, outcomes: list[Outcome]) -> None:
        """The outcomes of one batch in one statement run for every row (executemany), each row only if its claim
        still stands."""
        settings = self.settings
        window = timedelta(seconds=settings.webhook_retry_window_seconds)
        at = now()
        rows = []
        for outcome in outcomes:
            c = outcome.claimed
            row = {
                "b_id": c.delivery_id,
                "b_claim": c.claim,
                "status": "pending",
                "delivered_at": None,
                "next_attempt_at": at,
                "last_http_status": outcome.status_code,
                "last_error": outcome.error,
            }
            if outcome.ok:
                row |= {"status": "delivered", "delivered_at": at}
            elif at >= c.window_started_at + window:
                row["status"] = "failed"
                logger.warning("webhook %s: delivery %s failed for good: %s", self.receiver.id, c.delivery_id, outcome.error)
            else:
                row["next_attempt_at"] = min(at + backoff(c.attempts, settings), c.window_started_at + window)
            rows.append(row)
        table = WebhookDelivery.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.claim == bindparam("b_claim"))
            .values(
                claim=None,
                status=bindparam("status"),
                delivered_at=bindparam("delivered_at"),
                next_attempt_at=bindparam("next_attempt_at"),
                last_http_status=bindparam("last_http_status"),
                last_error=bindparam("last_error"),
            )
        )
        async with self.dispatcher._session() as session, session.begin():
            await (await session.connection()).execute(statement, rows)
