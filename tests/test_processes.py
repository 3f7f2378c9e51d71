"""The service on several processes: two real API processes (uvicorn, started as `safety serve` starts it) on free
ports against the tests' one PostgreSQL database and SeaweedFS, each with its background jobs running.

- the same offline batch sent to both at once leaves one of everything;
- 20 wrong passwords split across both lock the account exactly as one process would;
- the scheduler, running in both, raises each overdue event once;
- both stopped in the middle of deliveries (one killed outright) and started again: no event is lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from backend.accounts.models import LoginFailure
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard, HazardEvent
from backend.inspections.models import Inspection, InspectionResult
from backend.integration.models import EventOutbox, WebhookDelivery
from backend.integration.outbox import emit
from bench.harness import api_command, free_port
from tests.helpers import USER_PASSWORD, World, ok, routine_checklist
from tests.media import jpeg
from tests.receiver import OK, SLOW, Receiver
from tests.test_hazards import act, make_overdue, report
from tests.test_inspections import ATTENDEES, all_compliant, items_of

ROOT = Path(__file__).resolve().parent.parent
SECRET = "two-processes-webhook-secret"
JOBS = {
    "JOBS": "true",
    "SCHEDULER_INTERVAL_SECONDS": "0.3",
    "WEBHOOK_POLL_SECONDS": "0.2",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "WEBHOOK_BACKOFF_MAX_SECONDS": "1",
}


@dataclass
class ApiProcess:
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **JOBS}
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(proxy, None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                api_command([sys.executable, "-m", "uvicorn"], self.port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    async def ready(self, seconds: float = 90) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, trust_env=False) as client:
            for _ in range(int(seconds / 0.25)):
                assert self.process is not None and self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)
        raise AssertionError(f"the API on port {self.port} did not start: {self.log.read_text(errors='replace')[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
async def servers(world: World, settings: Any, tmp_path: Path) -> AsyncIterator[list[ApiProcess]]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("several processes need PostgreSQL (SQLite belongs to one process)")
    pair = [ApiProcess(tmp_path / "api-a.log"), ApiProcess(tmp_path / "api-b.log")]
    try:
        for server in pair:
            server.start()
        await asyncio.gather(*(s.ready() for s in pair))
        yield pair
    finally:
        for server in pair:
            server.stop()


def client(world: World, server: ApiProcess, username: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, headers=world.headers(username), trust_env=False, timeout=60)


async def both(calls: list[Any]) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


async def count(world: World, model: Any, *where: Any) -> int:
    async with world.app.state.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_the_same_offline_batch_sent_to_both_processes_at_once_leaves_one_of_everything(
    world: World, servers: list[ApiProcess]
) -> None:
    checklist = await routine_checklist(world)
    items = await items_of(world, checklist["id"])
    a, b = (client(world, s, "inspector_a1") for s in servers)
    async with a, b:
        iid, eid = str(uuid.uuid4()), str(uuid.uuid4())
        inspection = {
            "id": iid,
            "enterprise_id": str(world.enterprises["a"].id),
            "checklist_ids": [checklist["id"]],
            "inspector_ids": [str(world.users["inspector_a1"].id), str(world.users["inspector_a2"].id)],
            "kind": "routine",
        }
        created = await both([a.post("/api/v1/inspections", json=inspection), b.post("/api/v1/inspections", json=inspection)])
        assert sorted(r.status_code for r in created) == [200, 201], [r.text for r in created]

        photo = jpeg(color=(90, 120, 150))
        form = {"kind": "photo", "id": eid, "inspection_id": iid}
        uploads = await both([c.post("/api/v1/evidence", data=form, files={"file": ("p.jpg", photo, "image/jpeg")}) for c in (a, b)])
        assert all(r.status_code in (200, 201) for r in uploads), [r.text for r in uploads]
        assert {r.json()["id"] for r in uploads} == {eid}

        findings = {items[0]["code"]: [eid], items[1]["code"]: [eid]}
        batch = {"results": all_compliant(checklist["id"], items, findings)}
        results = await both([c.put(f"/api/v1/inspections/{iid}/results", json=batch) for c in (a, b)])
        assert all(r.status_code in (200, 409) for r in results) and any(r.status_code == 200 for r in results), [r.text for r in results]
        if any(r.status_code == 409 for r in results):  # lost the race on the same rows: the phone sends it again
            assert [r.json()["code"] for r in results if r.status_code == 409] == ["concurrent_change"]
            ok(await a.put(f"/api/v1/inspections/{iid}/results", json=batch))

        submit = {"attendees": ATTENDEES, "feedback": "当场反馈"}
        submitted = await both([c.post(f"/api/v1/inspections/{iid}/submit", json=submit) for c in (a, b)])
        assert all(r.status_code in (200, 409) for r in submitted), [r.text for r in submitted]
        answered = [r.json() for r in submitted if r.status_code == 200]
        if len(answered) < 2:  # the loser of a race on the same row; sent again, it answers as the first time
            again = await b.post(f"/api/v1/inspections/{iid}/submit", json=submit)
            assert again.status_code == 200, again.text
            answered.append(again.json())
        assert answered[0]["hazard_ids"] == answered[1]["hazard_ids"] and len(answered[0]["hazard_ids"]) == 2

    assert await count(world, Inspection, col(Inspection.id) == uuid.UUID(iid)) == 1
    assert await count(world, Evidence, col(Evidence.id) == uuid.UUID(eid)) == 1
    assert await count(world, InspectionResult, col(InspectionResult.inspection_id) == uuid.UUID(iid)) == len(items)
    assert await count(world, Hazard, col(Hazard.inspection_id) == uuid.UUID(iid)) == 2
    assert await count(world, HazardEvent) == 2  # one opening step per hazard


async def test_twenty_wrong_passwords_across_both_processes_lock_the_account_as_one_would(world: World, servers: list[ApiProcess]) -> None:
    settings = world.app.state.settings
    async with (
        httpx.AsyncClient(base_url=servers[0].base_url, trust_env=False, timeout=60) as a,
        httpx.AsyncClient(base_url=servers[1].base_url, trust_env=False, timeout=60) as b,
    ):
        wrong = {"username": "inspector_a1", "password": "not-the-password"}
        answers = await both([(a, b)[n % 2].post("/api/v1/auth/login", json=wrong) for n in range(20)])
        codes = sorted(r.status_code for r in answers)
        assert codes == [401] * settings.login_max_failures + [429] * (20 - settings.login_max_failures), codes
        right = {"username": "inspector_a1", "password": USER_PASSWORD}
        for c in (a, b):
            locked = await c.post("/api/v1/auth/login", json=right)
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert await count(world, LoginFailure) == settings.login_max_failures


async def test_the_scheduler_in_both_processes_raises_each_overdue_hazard_once(world: World, servers: list[ApiProcess]) -> None:
    receiver = await Receiver().start()
    try:
        ok(await world.post("admin", "/api/v1/webhooks", {"url": receiver.url, "secret": SECRET, "events": ["hazard.overdue"]}))
        hazards = []
        for n in range(6):
            hid = (await report(world, description=f"隐患{n}"))["id"]
            ok(await act(world, "inspector_a1", hid, "order", {"deadline": "2100-01-01", "measures": "立即整改"}))
            await make_overdue(world, hid)
            hazards.append(hid)
        for _ in range(120):
            if len(set(receiver.event_ids())) == len(hazards):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(2)  # several more scans of both processes
        async with world.app.state.sessionmaker() as session:
            raised = list((await session.execute(select(EventOutbox).where(col(EventOutbox.event) == "hazard.overdue"))).scalars())
        assert sorted(str(e.subject_id) for e in raised) == sorted(hazards)  # one each
        assert sorted(receiver.event_ids()) == sorted(str(e.id) for e in raised)  # each delivered once
        assert all(r.signed_with(SECRET) for r in receiver.received)
    finally:
        await receiver.stop()


async def test_a_restart_in_the_middle_of_deliveries_loses_none(world: World, servers: list[ApiProcess]) -> None:
    receiver = await Receiver(then=SLOW, delay=0.5).start()  # 2 processes x 8 at once: 80 events take >= 2.5 s
    try:
        hook = await world.post("admin", "/api/v1/webhooks", {"url": receiver.url, "secret": SECRET, "events": ["task.assigned"]})
        ok(hook)
        events = 80
        async with world.app.state.sessionmaker() as session:
            ids = [str(emit(session, "task.assigned", {"task": {"n": n}}).id) for n in range(events)]
            await session.commit()
        for _ in range(200):
            if len(receiver.received) >= 10:
                break
            await asyncio.sleep(0.05)
        assert receiver.received
        assert await count(world, WebhookDelivery, col(WebhookDelivery.status) == "delivered") < events  # mid-way
        # (in threads: the receiver runs on this event loop and must keep answering meanwhile)
        await asyncio.to_thread(servers[0].stop, signal.SIGKILL)  # dies mid-delivery: its claims are left behind
        await asyncio.to_thread(servers[1].stop, signal.SIGTERM)  # stops, cutting its deliveries short
        receiver.then = OK
        for server in servers:
            server.start()
        await asyncio.gather(*(s.ready() for s in servers))
        for _ in range(240):
            if await count(world, WebhookDelivery, col(WebhookDelivery.status) == "delivered") == events:
                break
            await asyncio.sleep(0.25)
        assert await count(world, WebhookDelivery, col(WebhookDelivery.status) == "delivered") == events
        assert set(receiver.event_ids(None)) == set(ids)  # none lost (answered late or at once, all with 200)
        duplicates = len(receiver.received) - len(set(receiver.event_ids(None)))
        assert duplicates <= len(servers) * world.app.state.settings.webhook_concurrency  # at most the attempts cut short
    finally:
        await receiver.stop()


def test_serve_runs_workers_on_postgresql_only_and_believes_proxy_headers_from_the_balancer(world: World) -> None:
    import click

    from backend.cli import check_workers, uvicorn_options

    settings = world.app.state.settings
    several = replace(settings, workers=3, forwarded_allow_ips="10.0.0.5", database_url="postgresql://db.example/safety")
    check_workers(several)
    options = uvicorn_options(several)
    assert options["workers"] == 3 and options["proxy_headers"] is True and options["forwarded_allow_ips"] == "10.0.0.5"
    assert options["http"] == "h11"  # the bounded header parser, as with one process
    with pytest.raises(click.ClickException, match="needs PostgreSQL"):
        check_workers(replace(several, database_url="sqlite+aiosqlite:///.state/safety.db"))
    check_workers(replace(several, workers=1, database_url="sqlite+aiosqlite:///.state/safety.db"))
