"""Events out: the outbox written with the change, webhooks registered and refused, deliveries signed, retried,
failed after their window, listed and redelivered, against a real HTTP receiver on 127.0.0.1.

The app's background jobs are off in the tests (JOBS=false): each test drives a Dispatcher step by step, with
settings of its own (short timeouts, back-off and windows), so nothing depends on a poll interval."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from backend.integration.delivery import Dispatcher, backoff
from backend.integration.models import EventOutbox, Webhook, WebhookDelivery
from backend.integration.outbox import emit
from backend.integration.receivers import SecretBox, url_refusal
from tests.helpers import World, assert_problem, ok
from tests.receiver import CLOSE, ERROR, OK, SLOW, Receiver
from tests.test_hazards import act, proof, report

SECRET = "s3cret-for-webhook-tests"
FUTURE = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def dispatcher(world: World, **settings: Any) -> Dispatcher:
    defaults: dict[str, Any] = {
        "webhook_timeout_seconds": 1.0,
        "webhook_backoff_base_seconds": 0.01,
        "webhook_backoff_max_seconds": 0.05,
        "webhook_retry_window_seconds": 3600.0,
    }
    return Dispatcher(world.app.state.sessionmaker, replace(world.app.state.settings, **{**defaults, **settings}))


async def register(world: World, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"url": url, "secret": SECRET, "events": events or ["hazard.closed", "hazard.recurred", "case.decided"]}
    response = await world.post("admin", "/api/v1/webhooks", body)
    assert response.status_code == 201, response.text
    return response.json()


async def closed_hazard(world: World) -> str:
    """A self-reported general hazard the enterprise fixed and accepted itself: one hazard.closed event."""
    hid = (await report(world, "enterprise_a", deadline=FUTURE, description="灭火器过期"))["id"]
    ok(await act(world, "enterprise_a", hid, "rectifications", await proof(world, hid)))
    ok(await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "已更换灭火器"}))
    return hid


async def deliveries(world: World, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await world.get("admin", f"/api/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def drive(d: Dispatcher, until: Any, rounds: int = 200) -> None:
    """Rounds of the dispatcher until `until()` holds (a few seconds at most)."""
    for _ in range(rounds):
        await d.deliver_once()
        if await until():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the deliveries did not get there")


# --- registration ---------------------------------------------------------------------------------------------------


async def test_a_webhook_is_registered_by_an_admin_and_its_secret_never_shown_again(world: World, receiver: Receiver) -> None:
    created = await register(world, receiver.url)
    assert created["url"] == receiver.url and created["active"] is True and "secret" not in created
    listed = (await world.get("admin", "/api/v1/webhooks")).json()
    assert [w["id"] for w in listed["items"]] == [created["id"]] and SECRET not in str(listed)
    async with world.app.state.sessionmaker() as session:
        stored = await session.get(Webhook, uuid.UUID(created["id"]))
    assert stored is not None and SECRET not in stored.secret_encrypted  # encrypted at rest
    assert SecretBox(world.app.state.settings).open(stored.secret_encrypted) == SECRET
    assert_problem(await world.post("inspector_a1", "/api/v1/webhooks", {"url": receiver.url, "secret": SECRET, "events": []}), 403)
    assert_problem(await world.get("inspector_a1", "/api/v1/webhooks"), 403, "role_forbidden")
    unknown_event = await world.post("admin", "/api/v1/webhooks", {"url": receiver.url, "secret": SECRET, "events": ["hazard.eaten"]})
    assert unknown_event.status_code == 400, unknown_event.text
    short_secret = await world.post("admin", "/api/v1/webhooks", {"url": receiver.url, "secret": "short", "events": ["hazard.closed"]})
    assert short_secret.status_code == 400, short_secret.text
    gone = await world.client.delete(f"/api/v1/webhooks/{created['id']}", headers=world.headers("admin"))
    assert gone.status_code == 204
    assert (await world.get("admin", "/api/v1/webhooks")).json()["items"][0]["active"] is False


REFUSED_ALWAYS = [
    "ftp://receiver.example/hooks",
    "file:///etc/passwd",
    "receiver.example/hooks",
    "http:///no-host",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.10.1/",
    "http://[fe80::1]/hooks",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata.tencentyun.com/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://user:password@receiver.example/hooks",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
]
REFUSED_UNLESS_PRIVATE = [
    "http://127.0.0.1:9/hooks",
    "http://[::1]/hooks",
    "http://10.1.2.3/hooks",
    "http://192.168.1.20/",
    "http://localhost/",
]


async def test_bad_webhook_urls_are_refused_naming_url(world: World) -> None:
    for url in REFUSED_ALWAYS:
        response = await world.post("admin", "/api/v1/webhooks", {"url": url, "secret": SECRET, "events": ["hazard.closed"]})
        assert_problem(response, 422, "webhook_url_refused", field="url")
    settings = world.app.state.settings
    for url in REFUSED_UNLESS_PRIVATE:
        assert url_refusal(url, allow_private=True) is None, url
    world.app.state.settings = replace(settings, webhook_allow_private=False)
    try:
        for url in REFUSED_UNLESS_PRIVATE:
            response = await world.post("admin", "/api/v1/webhooks", {"url": url, "secret": SECRET, "events": ["hazard.closed"]})
            assert_problem(response, 422, "webhook_url_refused", field="url")
    finally:
        world.app.state.settings = settings
    async with world.app.state.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Webhook))).scalar_one() == 0


# --- the outbox -----------------------------------------------------------------------------------------------------


async def outbox(world: World, event: str | None = None) -> list[EventOutbox]:
    async with world.app.state.sessionmaker() as session:
        query = select(EventOutbox).order_by(col(EventOutbox.created_at))
        return list((await session.execute(query.where(col(EventOutbox.event) == event) if event else query)).scalars())


async def test_events_are_written_in_the_transaction_of_the_change(world: World) -> None:
    hid = await closed_hazard(world)
    [closed] = await outbox(world, "hazard.closed")
    assert str(closed.subject_id) == hid and closed.data["hazard"]["id"] == hid and closed.data["hazard"]["status"] == "closed"
    assert closed.data["by"] == "enterprise_a" and closed.fanned_out_at is None
    # a step refused (409) changes nothing and raises nothing
    assert_problem(await act(world, "enterprise_a", hid, "review", {"decision": "accept", "opinion": "再次验收"}), 409)
    assert len(await outbox(world)) == 1
    # a transaction rolled back takes its event with it
    async with world.app.state.sessionmaker() as session:
        emit(session, "task.assigned", {"task": {"id": str(uuid.uuid4())}})
        await session.flush()
        await session.rollback()
    assert len(await outbox(world)) == 1
    with pytest.raises(ValueError, match="unknown event"):
        emit(None, "hazard.eaten", {})  # type: ignore[arg-type]


async def test_case_decided_is_raised_with_the_decision(world: World) -> None:
    from tests.test_procedure import API, notified_minor_case

    cid = await notified_minor_case(world)
    ok(await world.post("inspector_a2", f"{API}/{cid}/statements", {"content": "放弃陈述、申辩", "waived": True}))
    ok(await world.post("inspector_a1", f"{API}/{cid}/decide"))
    [decided] = await outbox(world, "case.decided")
    assert decided.data["case"]["id"] == cid and decided.data["case"]["status"] == "decided"


# --- delivery -------------------------------------------------------------------------------------------------------


async def test_a_delivery_is_signed_and_carries_the_event(world: World, receiver: Receiver) -> None:
    hook = await register(world, receiver.url)
    hid = await closed_hazard(world)
    d = dispatcher(world)
    assert await d.deliver_once() == 1
    [got] = receiver.received
    [event] = await outbox(world, "hazard.closed")
    assert got.signed_with(SECRET) and not got.signed_with("another-secret-entirely")
    assert abs(int(got.headers["x-timestamp"]) - time.time()) < 60
    assert got.headers["x-event-id"] == str(event.id) and got.headers["content-type"].startswith("application/json")
    body = got.json
    assert set(body) == {"id", "event", "occurred_at", "data"}
    assert body["id"] == str(event.id) and body["event"] == "hazard.closed" and body["data"]["hazard"]["id"] == hid
    assert datetime.fromisoformat(body["occurred_at"]).utcoffset() == timedelta(hours=8)
    [delivery] = await deliveries(world, hook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["last_http_status"] == 200
    assert delivery["event_id"] == str(event.id) and delivery["next_attempt_at"] is None
    assert await d.deliver_once() == 0 and len(receiver.received) == 1  # delivered once


@pytest.mark.parametrize("failure", [ERROR, SLOW, CLOSE])
async def test_a_failed_attempt_is_retried_with_the_same_event(world: World, receiver: Receiver, failure: str) -> None:
    """500, no answer within the timeout, and a connection closed without an answer: each is retried."""
    receiver.plan, receiver.delay = [failure, failure], 3.0
    hook = await register(world, receiver.url)
    await closed_hazard(world)
    d = dispatcher(world, webhook_timeout_seconds=0.5)

    async def delivered() -> bool:
        return [x["status"] for x in await deliveries(world, hook["id"])] == ["delivered"]

    await drive(d, delivered)
    assert [r.answered for r in receiver.received] == [failure, failure, OK]
    assert len(set(receiver.event_ids(None))) == 1  # the same event id every time
    assert len({r.body for r in receiver.received}) == 1  # the same body; only the timestamp and signature change
    assert all(r.signed_with(SECRET) for r in receiver.received)
    [delivery] = await deliveries(world, hook["id"])
    assert delivery["attempts"] == 3


def test_back_off_doubles_up_to_its_maximum(world: World) -> None:
    settings = replace(world.app.state.settings, webhook_backoff_base_seconds=10, webhook_backoff_max_seconds=3600)
    waits = [backoff(n, settings).total_seconds() for n in (1, 2, 3, 4, 12, 40, 1000)]
    for wait, expected in zip(waits, [10, 20, 40, 80, 3600, 3600, 3600], strict=True):
        assert expected * 0.9 <= wait <= expected * 1.1
    defaults = world.app.state.settings
    assert defaults.webhook_retry_window_seconds >= 24 * 3600  # at least a day of retries before `failed`


async def test_after_the_window_a_delivery_fails_is_listed_and_can_be_redelivered(world: World, receiver: Receiver) -> None:
    receiver.then = ERROR
    hook = await register(world, receiver.url)
    await closed_hazard(world)
    d = dispatcher(world, webhook_retry_window_seconds=0.3)

    async def failed() -> bool:
        return [x["status"] for x in await deliveries(world, hook["id"])] == ["failed"]

    await drive(d, failed)
    tries = len(receiver.received)
    assert tries >= 2  # retried within the window, then given up
    [listed] = await deliveries(world, hook["id"], status="failed")
    assert listed["last_http_status"] == 500 and "500" in listed["last_error"]
    assert await deliveries(world, hook["id"], status="pending") == []
    await d.deliver_once()
    assert len(receiver.received) == tries  # a failed delivery is not tried again by itself

    receiver.then = OK
    again = await world.post("admin", f"/api/v1/webhooks/{hook['id']}/deliveries/{listed['id']}/redeliver")
    assert again.status_code == 202 and again.json()["status"] == "pending", again.text
    await drive(d, lambda: _status_is(world, hook["id"], "delivered"))
    assert receiver.received[-1].answered == OK and receiver.received[-1].headers["x-event-id"] == listed["event_id"]
    assert_problem(
        await world.post("admin", f"/api/v1/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/redeliver"), 404, "delivery_not_found"
    )
    assert_problem(await world.get("admin", f"/api/v1/webhooks/{uuid.uuid4()}/deliveries"), 404, "webhook_not_found")


async def _status_is(world: World, webhook_id: str, status: str) -> bool:
    return [x["status"] for x in await deliveries(world, webhook_id)] == [status]


async def test_a_slow_receiver_never_holds_up_another(world: World, receiver: Receiver) -> None:
    """Lanes run per receiver: the quick one gets its events while the slow one's attempts are still timing out."""
    slow = await Receiver(then=SLOW, delay=30).start()
    try:
        await register(world, slow.url)
        quick = await register(world, receiver.url)
        for _ in range(3):
            await closed_hazard(world)
        d = dispatcher(world, webhook_timeout_seconds=5.0, webhook_poll_seconds=0.05)
        task = asyncio.create_task(d.run())
        try:
            started = time.monotonic()
            for _ in range(80):
                if len(receiver.received) >= 3:
                    break
                await asyncio.sleep(0.05)
            assert len(receiver.received) == 3 and time.monotonic() - started < 4
            assert await _all_delivered(world, quick["id"], 3)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await slow.stop()


async def _all_delivered(world: World, webhook_id: str, count: int) -> bool:
    listed = await deliveries(world, webhook_id)
    return len(listed) == count and all(x["status"] == "delivered" for x in listed)


async def test_a_delivery_cut_off_mid_way_comes_due_again_when_its_lease_ends(world: World, receiver: Receiver) -> None:
    """A process that stops between claiming and recording: the claim's lease ends and the delivery is sent again."""
    hook = await register(world, receiver.url)
    await closed_hazard(world)
    d = dispatcher(world)
    await d.fan_out()
    async with world.app.state.sessionmaker() as session:
        webhook = await session.get(Webhook, uuid.UUID(hook["id"]))
    assert webhook is not None
    from backend.integration.delivery import Lane
    from backend.integration.delivery import Receiver as Target

    lane = Lane(d, Target(webhook.id, webhook.url, SECRET))
    claimed = await lane.claim()  # ... and the process dies here
    await lane.client.aclose()
    assert len(claimed) == 1 and await d.deliver_once() == 0  # leased: nobody else sends it meanwhile
    async with world.app.state.sessionmaker() as session:  # the lease runs out
        await session.execute(update(WebhookDelivery).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    assert await d.deliver_once() == 1
    [delivery] = await deliveries(world, hook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2 and len(receiver.received) == 1
