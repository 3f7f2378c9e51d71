"""Integration benchmark: the field flow on 1 and on 2 API processes, and a webhook fan-out beside live requests.

    .venv/bin/python bench/integration.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--inspectors 8] [--photos 3] [--events 10000] [--probe-seconds 20]
                                          [--skip-flow] [--skip-fanout]

Everything runs on 127.0.0.1 (free ports) in one temporary folder, removed at the end: an embedded SeaweedFS, a
fresh PostgreSQL database (dropped at the end), and the API as `safety serve` runs it (uvicorn, h11, and
`--workers N` as WORKERS=N does).

1. flow: `--inspectors` inspectors at once, each as a phone would: create an inspection, upload `--photos` unique
   12-megapixel JPEGs (4000x3000, ~3 MB, made before the clock starts; default 6 each), send the results of every item (one hazard
   per photo), submit. Measured with 1 API process, then with 2 (fresh photos each time); the figure is photos per
   second over the whole flow, and the ratio 2 processes / 1 process (goal >= 1.6x).
2. fan-out: 3 receivers (another process; one answers 500 to everything), webhooks for all three, then
   `--events` events committed to the outbox at once (rows as `emit()` writes them). A prober process calls
   `GET /api/v1/hazards?limit=20` one request at a time throughout; its p50/p99 before the events (baseline) and
   while the dispatcher delivers them are compared (goal: p99 within +-10 %). Also: the time until both working
   receivers have every event, and deliveries per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from backend.accounts.credit_code import make_credit_code  # noqa: E402
from backend.migrations import upgrade  # noqa: E402
from backend.storage import EmbeddedSeaweed  # noqa: E402
from bench.evidence_ingest import form_frame, make_photos, postgres_database  # noqa: E402
from bench.harness import api_command, api_environment, free_port  # noqa: E402

ADMIN_PASSWORD = secrets.token_urlsafe(16)
SECRET_KEY = secrets.token_urlsafe(32)  # one for every API started: tokens stay valid across them
ATTENDEES = [{"role": "principal", "name": "王主任"}, {"role": "safety_manager", "name": "李安全"}, {"role": "operator", "name": "赵师傅"}]
PASSWORD = secrets.token_urlsafe(16)
SECRET_KEY = secrets.token_urlsafe(32)  # one for every API started: tokens stay valid across them
ATTENDEES = [{"role": "principal", "name": "王主任"}, {"role": "safety_manager", "name": "李安全"}, {"role": "operator", "name": "赵师傅"}]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


@dataclass
class Api:
    process: subprocess.Popen[bytes]
    base_url: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_api(database_url: str, s3: Any, state: Path, workers: int, **settings: str) -> Api:
    port = free_port()
    env = api_environment(database_url, s3, state, ADMIN_PASSWORD=ADMIN_PASSWORD, SECRET_KEY=SECRET_KEY, **settings)
    command = [*api_command([sys.executable, "-m", "uvicorn"], port), "--workers", str(workers)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).status_code == 200:
                time.sleep(8)  # every worker and its jobs process through start-up before anything is measured
                return Api(process, base)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("the API exited at start-up")
        time.sleep(0.3)
    raise RuntimeError("the API did not start")


@dataclass
class Seeded:
    admin: dict[str, str]
    enterprise_id: str
    checklist_id: str
    items: list[str]
    inspectors: list[tuple[str, dict[str, str]]]  # (user id, auth header)


def seed(base_url: str, inspectors: int) -> Seeded:
    with httpx.Client(base_url=f"{base_url}/api/v1", trust_env=False, timeout=60) as client:

        def login(username: str, password: str) -> dict[str, str]:
            body = expect(client.post("/auth/login", json={"username": username, "password": password}), 200)
            return {"Authorization": f"Bearer {body['access_token']}"}

        admin = login("admin", ADMIN_PASSWORD)
        agency = expect(client.post("/agencies", json={"name": "基准测试应急管理局", "region_code": "140600"}, headers=admin), 201)
        enterprise = expect(
            client.post(
                "/enterprises",
                json={
                    "name": "基准测试煤业有限公司",
                    "credit_code": make_credit_code("91140602MA0K0BNCH"),
                    "topics": ["mining"],
                    "agency_id": agency["id"],
                    "address": "山西省朔州市朔城区基准路1号",
                },
                headers=admin,
            ),
            201,
        )
        people = []
        for n in range(inspectors):
            user = expect(
                client.post(
                    "/users",
                    json={
                        "username": f"bench_inspector{n}",
                        "password": PASSWORD,
                        "display_name": f"基准检查员{n}",
                        "role": "inspector",
                        "agency_id": agency["id"],
                        "certificate_no": f"1406002024{n:04d}",
                    },
                    headers=admin,
                ),
                201,
            )
            people.append((user["id"], login(f"bench_inspector{n}", PASSWORD)))
        checklist = expect(client.get("/checklists", params={"topic": "mining", "kind": "routine"}, headers=people[0][1]), 200)["items"][0]
        items = [i["code"] for i in expect(client.get(f"/checklists/{checklist['id']}", headers=people[0][1]), 200)["items"]]
        return Seeded(admin, enterprise["id"], checklist["id"], items, people)


# --- 1. the field flow ----------------------------------------------------------------------------------------------


async def one_inspector(client: httpx.AsyncClient, world: Seeded, user_id: str, auth: dict[str, str], photos: list[bytes]) -> None:
    inspection = expect(
        await client.post(
            "/api/v1/inspections",
            json={
                "enterprise_id": world.enterprise_id,
                "checklist_ids": [world.checklist_id],
                "inspector_ids": [user_id],
                "kind": "routine",
            },
            headers=auth,
        ),
        201,
    )
    iid = inspection["id"]
    evidence = []
    for n, data in enumerate(photos):
        boundary = "bench-" + secrets.token_hex(8)
        head, tail = form_frame(boundary, "photo", iid, f"IMG_{n:04d}.jpg", "image/jpeg")
        headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        evidence.append(expect(await client.post("/api/v1/evidence", content=head + data + tail, headers=headers), 201)["id"])
    results = []
    for n, code in enumerate(world.items):
        if n < len(evidence):
            results.append({"checklist_id": world.checklist_id, "item_code": code, "outcome": "hazard", "evidence_ids": [evidence[n]]})
        else:
            results.append({"checklist_id": world.checklist_id, "item_code": code, "outcome": "compliant"})
    expect(await client.put(f"/api/v1/inspections/{iid}/results", json={"results": results}, headers=auth), 200)
    done = expect(
        await client.post(f"/api/v1/inspections/{iid}/submit", json={"attendees": ATTENDEES}, headers=auth),
        200,
    )
    assert len(done["hazard_ids"]) == len(photos)


async def field_flow(base_url: str, world: Seeded, photos: list[list[bytes]]) -> float:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=300) as client:
        started = time.monotonic()
        await asyncio.gather(*(one_inspector(client, world, uid, auth, p) for (uid, auth), p in zip(world.inspectors, photos, strict=True)))
        return time.monotonic() - started


# --- 2. the fan-out ---------------------------------------------------------------------------------------------------


def receivers_process(out: Connection, stop: Any) -> None:
    """Three receivers on 127.0.0.1: two answer 200, one 500; send back their URLs, then the counts at the end.
    They stand in for other organisations' machines, so they run at a lower priority (nice +10) than the API and
    the database they would not share cores with."""
    from tests.receiver import ERROR, OK, Receiver

    os.nice(10)

    async def run() -> None:
        group = [await Receiver(then=OK).start(), await Receiver(then=OK).start(), await Receiver(then=ERROR).start()]
        out.send([r.url for r in group])
        await asyncio.to_thread(stop.wait)
        out.send([len(r.received) for r in group])
        for r in group:
            await r.stop()

    asyncio.run(run())


def probe(base_url: str, auth: dict[str, str], stop: Any, out: Connection) -> None:
    """GET /api/v1/hazards?limit=20 one request at a time, 20 ms apart; send back (start, ms) of each."""
    samples = []
    with httpx.Client(base_url=base_url, headers=auth, trust_env=False, timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            client.get("/api/v1/hazards", params={"limit": 20}).raise_for_status()
            samples.append((started, (time.monotonic() - started) * 1000))
            time.sleep(0.02)
    out.send(samples)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max": round(ordered[-1], 1),
    }


async def insert_events(database_url: str, count: int) -> None:
    import asyncpg

    rows = [
        (uuid.uuid4(), "task.assigned", None, "", None, json.dumps({"task": {"n": n, "title": "检查任务"}}, ensure_ascii=False))
        for n in range(count)
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO event_outbox (id, event, subject_id, aspect, due_at, data, occurred_at, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6::json, now(), now())",
            rows,
        )
    finally:
        await conn.close()


async def delivered_counts(database_url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT w.url, count(*) FILTER (WHERE d.status = 'delivered') AS n "
            "FROM webhook w LEFT JOIN webhook_delivery d ON d.webhook_id = w.id "
            "GROUP BY w.url"
        )
        return {r["url"]: r["n"] for r in rows}
    finally:
        await conn.close()


def fan_out(base_url: str, database_url: str, world: Seeded, events: int, probe_seconds: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    stop_receivers = ctx.Event()
    parent, child = ctx.Pipe()
    receivers = ctx.Process(target=receivers_process, args=(child, stop_receivers))
    receivers.start()
    urls = parent.recv()
    with httpx.Client(base_url=f"{base_url}/api/v1", trust_env=False, timeout=30) as client:
        for url in urls:
            expect(
                client.post(
                    "/webhooks", json={"url": url, "secret": "bench-secret-0123456789", "events": ["task.assigned"]}, headers=world.admin
                ),
                201,
            )

    def probed(during: Callable[[], Any]) -> tuple[list[float], Any]:
        stop = ctx.Event()
        into, out = ctx.Pipe()
        prober = ctx.Process(target=probe, args=(base_url, world.inspectors[0][1], stop, out))
        prober.start()
        time.sleep(1)  # the prober's own start-up
        result = during()
        stop.set()
        samples = into.recv()
        prober.join()
        return [ms for _, ms in samples[5:]], result

    baseline, _ = probed(lambda: time.sleep(probe_seconds))
    ok_urls = urls[:2]

    def deliver_all() -> dict[str, float]:
        started = time.monotonic()
        asyncio.run(insert_events(database_url, events))
        while True:
            counts = asyncio.run(delivered_counts(database_url))
            if all(counts.get(u, 0) >= events for u in ok_urls):
                return {"seconds": time.monotonic() - started}
            if time.monotonic() - started > 1800:
                return {"seconds": float("nan"), "counts": counts}  # type: ignore[dict-item]
            time.sleep(0.5)

    during, took = probed(deliver_all)
    stop_receivers.set()
    received = parent.recv()
    receivers.join()
    return {
        "events": events,
        "receivers": 3,
        "seconds_to_deliver_to_the_two_working_receivers": round(took["seconds"], 1),
        "deliveries_per_second": round(2 * events / took["seconds"], 1),
        "requests_received": received,
        "probe_baseline_ms": percentiles(baseline),
        "probe_during_fanout_ms": percentiles(during),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--inspectors", type=int, default=8)
    parser.add_argument("--photos", type=int, default=6, help="photos per inspector")
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--probe-seconds", type=float, default=20)
    parser.add_argument("--skip-flow", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-integration-"))
    store = EmbeddedSeaweed(work / "seaweedfs", "bench-evidence")
    drop: Callable[[], None] | None = None
    api: Api | None = None
    report: dict[str, Any] = {"cpus": os.cpu_count()}
    world: Seeded | None = None
    try:
        s3 = store.start()
        database_url, drop = postgres_database(args.postgres)
        upgrade(database_url)
        if not args.skip_flow:
            log(f"making {2 * args.inspectors * args.photos} unique 12-MP photos ...")
            photos = make_photos(2 * args.inspectors * args.photos, first_seed=secrets.randbelow(10**6))
            per = args.inspectors * args.photos
            for workers, batch in ((1, photos[:per]), (2, photos[per:])):
                api = start_api(database_url, s3, work / f"state{workers}", workers, JOBS="true")
                world = world or seed(api.base_url, args.inspectors)
                split = [batch[i * args.photos : (i + 1) * args.photos] for i in range(args.inspectors)]
                seconds = asyncio.run(field_flow(api.base_url, world, split))
                report[f"flow_{workers}_process"] = {"seconds": round(seconds, 2), "photos_per_second": round(per / seconds, 2)}
                log(f"field flow, {workers} process(es): {per} photos in {seconds:.1f} s = {per / seconds:.2f} photos/s")
                api.stop()
                api = None
            report["flow_scaling_ratio"] = round(
                report["flow_2_process"]["photos_per_second"] / report["flow_1_process"]["photos_per_second"], 2
            )
            log(f"scaling 2 processes / 1 process: {report['flow_scaling_ratio']}x (goal >= 1.6x)")
        if not args.skip_fanout:
            api = start_api(
                database_url, s3, work / "state-fanout", 1, JOBS="true", WEBHOOK_POLL_SECONDS="0.5", WEBHOOK_ALLOW_PRIVATE="true"
            )
            world = world or seed(api.base_url, 1)
            report["fanout"] = fan_out(api.base_url, database_url, world, args.events, args.probe_seconds)
            log(json.dumps(report["fanout"], ensure_ascii=False))
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    finally:
        if api is not None:
            api.stop()
        store.stop()
        if drop is not None:
            drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
