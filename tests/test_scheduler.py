"""Time-based events: hazard.overdue, lookback.due and case.deadline_near, each raised once per subject and due
instant, however often and from however many places the scan runs. (Several real processes: tests/test_processes.py.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from backend.integration.models import EventOutbox
from backend.integration.outbox import emit_once
from backend.integration.scheduler import Scheduler
from tests.helpers import World, ok
from tests.test_enforcement import open_case
from tests.test_hazards import act, make_overdue, proof, report

SOON = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
LATER = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()


def scheduler(world: World) -> Scheduler:
    return Scheduler(world.app.state.sessionmaker, world.app.state.settings)


async def raised(world: World, event: str) -> list[EventOutbox]:
    async with world.app.state.sessionmaker() as session:
        query = select(EventOutbox).where(col(EventOutbox.event) == event).order_by(col(EventOutbox.created_at))
        return list((await session.execute(query)).scalars())


async def test_an_overdue_hazard_is_raised_once_per_deadline(world: World) -> None:
    hid = (await report(world))["id"]
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": SOON, "measures": "立即清理"}))
    assert await scheduler(world).scan() == 0  # not yet due
    await make_overdue(world, hid)
    # the scan from many places at once: one event
    results = await asyncio.gather(*(scheduler(world).scan() for _ in range(6)))
    assert sum(r or 0 for r in results) == 1
    assert await scheduler(world).scan() == 0
    [event] = await raised(world, "hazard.overdue")
    assert str(event.subject_id) == hid and event.data["hazard"]["id"] == hid and event.data["hazard"]["overdue"] is True
    # a new order moves the deadline: when that one passes too, it is raised once more
    ok(await act(world, "inspector_a1", hid, "order", {"deadline": LATER, "measures": "延期整改"}))
    assert await scheduler(world).scan() == 0
    await make_overdue(world, hid)  # an hour ago: a due instant of its own
    assert await scheduler(world).scan() == 1 and await scheduler(world).scan() == 0
    assert len({e.due_at for e in await raised(world, "hazard.overdue")}) == 2


async def test_a_look_back_coming_due_is_raised_once(world: World, lookback_now: Any) -> None:
    hid = (await report(world, "enterprise_a", deadline=SOON))["id"]
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    ok(await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "已整改"}))
    assert await scheduler(world).scan() == 1 and await scheduler(world).scan() == 0
    [event] = await raised(world, "lookback.due")
    assert str(event.subject_id) == hid and event.data["lookback_due_at"]


async def test_case_deadlines_near_are_raised_once_per_step(world: World) -> None:
    cid = (await open_case(world))["id"]
    s = scheduler(world)
    assert await s.scan() == 0  # 90 days to decide: not near
    days = world.app.state.settings.case_deadline_near_days
    assert await s.scan(at=datetime.now(UTC) + timedelta(days=90 - days + 1)) == 1
    assert await s.scan(at=datetime.now(UTC) + timedelta(days=100)) == 0  # passed since: the same due instant
    [event] = await raised(world, "case.deadline_near")
    assert event.aspect == "decision" and event.data["case"]["id"] == cid and event.data["step"] == "decision"
    assert event.data["overdue"] is False


async def test_emit_once_keeps_one_row_per_key(world: World) -> None:
    subject, due = uuid.uuid4(), datetime.now(UTC)
    async with world.app.state.sessionmaker() as session:
        first = await emit_once(session, "hazard.overdue", {"n": 1}, subject_id=subject, due_at=due)
        second = await emit_once(session, "hazard.overdue", {"n": 2}, subject_id=subject, due_at=due)
        other_aspect = await emit_once(session, "hazard.overdue", {"n": 3}, subject_id=subject, due_at=due, aspect="x")
        await session.commit()
    assert (first, second, other_aspect) == (True, False, True)
    assert len(await raised(world, "hazard.overdue")) == 2


async def test_a_draw_announces_each_task_to_the_webhooks(world: World) -> None:
    """`task.assigned` is written with the draw's tasks, in its transaction: one event per task, carrying the team."""
    from tests.test_scope_routes import plan_and_draw

    _, draw_id, _ = await plan_and_draw(
        world, str(world.agencies["district_a"].id), str(world.enterprises["a"].id), "inspector_a1", "leader_a"
    )
    tasks = (await world.get("inspector_a1", f"/api/v1/draws/{draw_id}")).json()["tasks"]
    events = [e for e in await raised(world, "task.assigned") if e.data["task"]["draw_id"] == draw_id]
    assert sorted(e.data["task"]["id"] for e in events) == sorted(t["id"] for t in tasks)
    assert all(len(e.data["task"]["inspector_ids"]) == 2 and e.subject_id is not None for e in events)
