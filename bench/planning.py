"""Benchmark: 双随机 draws over 50,000 enterprises and 500 inspectors, their verification, and plan progress over
20,000 tasks, on PostgreSQL through the real API.

    .venv/bin/python bench/planning.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                       [--enterprises 50000] [--inspectors 500] [--per-draw 5000] [--draws 4]
                                       [--requests 200] [--keep]

Creates its own database, migrates it with Alembic, loads agencies, enterprises (each classified: 1 % key, the rest
general), inspectors and declared conflicts with COPY, starts the API (uvicorn as `safety serve` runs it, SeaweedFS
for its health) and times real HTTP requests from one client: a leader approves a plan, then `--draws` draws of
`--per-draw` enterprises each (so the plan ends with draws × per-draw tasks; each draw after the first also keeps
every enterprise away from its previous team), each verified; then a share of the tasks is moved on (in progress,
done, past due) and GET /plans/{id}/progress is timed. Targets (2-core machine): a draw < 2 s, verify < 2 s,
progress p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.auth import hash_password  # noqa: E402
from bench.harness import copy_city, fresh_database, serving_api  # noqa: E402

TOPICS = ["mining", "hazardous_chemicals", "construction", "fire_safety", "industry_trade"]
PASSWORD = "bench-password-123"


async def load(dsn: str, enterprises: int, inspectors: int) -> str:
    """A city with 10 districts, the enterprises spread over the districts and classified, the inspectors and a leader
    at the city, and one declared conflict for every 50 enterprises. Returns the city's id."""
    conn = await asyncpg.connect(dsn)
    rng = random.Random(13)
    now = datetime.now(UTC)
    loaded = await copy_city(conn, enterprises, now)
    city, ents = loaded.id, loaded.enterprises
    await conn.copy_records_to_table(
        "enterprise_topic", records=[(e[0], TOPICS[n % len(TOPICS)]) for n, e in enumerate(ents)], columns=["enterprise_id", "topic"]
    )
    year_start = date(now.year, 1, 1)
    classifications = [
        (uuid.uuid4(), e[0], "key" if n % 100 == 0 else "general", "medium", "基准分类", year_start, now) for n, e in enumerate(ents)
    ]
    await conn.copy_records_to_table(
        "enterprise_classification",
        records=classifications,
        columns=["id", "enterprise_id", "category", "risk_level", "basis", "valid_from", "created_at"],
    )
    pw = hash_password(PASSWORD)
    users = [
        (uuid.uuid4(), "bench-leader", pw, "局长", "leader", city, None, True, now),
        *[(uuid.uuid4(), f"bench-inspector-{n}", pw, f"执法员{n}", "inspector", city, f"BENCH-{n}", True, now) for n in range(inspectors)],
    ]
    await conn.copy_records_to_table(
        "app_user",
        records=users,
        columns=["id", "username", "password_hash", "display_name", "role", "agency_id", "certificate_no", "is_active", "created_at"],
    )
    inspector_ids = [u[0] for u in users[1:]]
    conflicts = [(uuid.uuid4(), rng.choice(inspector_ids), e[0], "基准回避", now) for e in ents[::50]]
    await conn.copy_records_to_table(
        "inspector_conflict", records=conflicts, columns=["id", "user_id", "enterprise_id", "reason", "created_at"]
    )
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    return str(city)


async def move_tasks_on(dsn: str, plan_id: str) -> dict[str, int]:
    """What a year of work does to a plan: a fifth of the tasks in progress, two fifths done, a tenth past due."""
    conn = await asyncpg.connect(dsn)
    plan = uuid.UUID(plan_id)
    await conn.execute("UPDATE task SET status = 'in_progress' WHERE plan_id = $1 AND seq % 5 = 1", plan)
    await conn.execute("UPDATE task SET status = 'done' WHERE plan_id = $1 AND seq % 5 IN (2, 3)", plan)
    await conn.execute("UPDATE task SET due_by = now() - interval '1 day' WHERE plan_id = $1 AND seq % 10 = 4", plan)
    await conn.execute("VACUUM ANALYZE task")
    rows = await conn.fetch("SELECT status, count(*) AS n FROM task WHERE plan_id = $1 GROUP BY status", plan)
    await conn.close()
    return {r["status"]: r["n"] for r in rows}


def login(base: str, username: str) -> httpx.Client:
    token = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}, timeout=30).json()["access_token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def timed(call: Any) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}")
    return elapsed, response


def run(base: str, city: str, per_draw: int, draws: int, requests: int, dsn: str) -> list[tuple[str, float, str]]:
    figures: list[tuple[str, float, str]] = []
    year = datetime.now(UTC).year
    with login(base, "bench-inspector-0") as inspector, login(base, "bench-leader") as leader:
        rules = [{"category": "general", "sample_rate": 0.1}, {"category": "key", "visits_per_year": 2}]
        plan = inspector.post("/api/v1/plans", json={"agency_id": city, "year": year, "title": "基准年度计划", "rules": rules}).json()
        _, approved = timed(lambda: leader.post(f"/api/v1/plans/{plan['id']}/approve"))
        print(f"plan {plan['id']} {approved.json()['status']}", flush=True)
        period = {"period_start": f"{year}-01-01", "period_end": f"{year}-12-31"}
        for n in range(draws):
            body = {"id": str(uuid.uuid4()), "rule_index": 0, "count": per_draw, **period}
            seconds, response = timed(lambda body=body: inspector.post(f"/api/v1/plans/{plan['id']}/draws", json=body))
            result = response.json()
            line = f"population {result['population_size']:,}, {len(result['tasks']):,} tasks, {len(response.content) / 1e6:.1f} MB"
            print(f"draw {n + 1}: {seconds * 1000:7.0f} ms  ({line})", flush=True)
            figures.append((f"draw {n + 1}", seconds, line))
            seconds, response = timed(lambda result=result: inspector.get(f"/api/v1/draws/{result['id']}/verify"))
            verdict = response.json()
            print(f"verify {n + 1}: {seconds * 1000:5.0f} ms  valid={verdict['valid']} tasks={verdict['tasks']:,}", flush=True)
            figures.append((f"verify {n + 1}", seconds, f"valid={verdict['valid']}"))
            if not verdict["valid"]:
                raise RuntimeError(f"draw {result['id']} does not verify: {verdict}")
            seconds, response = timed(lambda body=body: inspector.post(f"/api/v1/plans/{plan['id']}/draws", json=body))
            print(f"replay {n + 1}: {seconds * 1000:5.0f} ms  status={response.status_code}", flush=True)
        body = {"id": str(uuid.uuid4()), "rule_index": 1, **period}
        seconds, response = timed(lambda: inspector.post(f"/api/v1/plans/{plan['id']}/draws", json=body))
        line = f"{response.json()['population_size']:,} key enterprises × 2 visits = {len(response.json()['tasks']):,} tasks"
        print(f"key draw: {seconds * 1000:7.0f} ms  ({line})", flush=True)
        figures.append(("key draw", seconds, line))

        statuses = asyncio.run(move_tasks_on(dsn, plan["id"]))
        print(f"tasks by status: {statuses}", flush=True)
        url = f"/api/v1/plans/{plan['id']}/progress"
        leader.get(url)  # warm-up
        samples = sorted(timed(lambda: leader.get(url))[0] * 1000 for _ in range(requests))
        p50, p99 = statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]
        total = sum(statuses.values())
        print(f"progress ({total:,} tasks): n={requests} p50={p50:.1f} ms p99={p99:.1f} ms", flush=True)
        print(f"  {leader.get(url).json()['rules']}")
        figures.append(("progress p50", p50 / 1000, f"{total:,} tasks"))
        figures.append(("progress p99", p99 / 1000, f"{total:,} tasks"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--enterprises", type=int, default=50_000)
    parser.add_argument("--inspectors", type=int, default=500)
    parser.add_argument("--per-draw", type=int, default=5_000)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with fresh_database(args.postgres, args.keep) as dsn:
        print(f"loading {args.enterprises:,} enterprises and {args.inspectors:,} inspectors", flush=True)
        city = asyncio.run(load(dsn, args.enterprises, args.inspectors))
        with serving_api(dsn, "planning-bench-") as base:
            figures = run(base, city, args.per_draw, args.draws, args.requests, dsn)
    print("\nsummary (targets: draw < 2 s, verify < 2 s, progress p99 < 200 ms)")
    for label, seconds, note in figures:
        target = 0.2 if label.startswith("progress") else 2.0
        met = "OK  " if seconds < target or label == "progress p50" else "MISS"
        print(f"  {met} {label:<14} {seconds * 1000:8.1f} ms  {note}")


if __name__ == "__main__":
    main()
