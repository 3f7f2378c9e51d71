"""Benchmark: the hazard list and statistics endpoints over one million hazards in PostgreSQL.

    .venv/bin/python bench/hazard_queries.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                             [--hazards 1000000] [--enterprises 2000] [--requests 200] [--keep]

Creates its own database, migrates it with Alembic, loads the rows with COPY, starts the API (uvicorn, SeaweedFS
for the health of the app), and times real HTTP requests from one client, one at a time. Prints p50/p99 per query.
Targets (2-core machine): list p99 < 50 ms at any depth, stats < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.auth import hash_password  # noqa: E402
from backend.hazards.tally import rebuild_sql  # noqa: E402
from backend.pagination import encode_cursor  # noqa: E402
from bench.harness import copy_city, fresh_database, serving_api  # noqa: E402

TOPICS = ["mining", "hazardous_chemicals", "construction", "fire_safety", "industry_trade"]
STATUSES = [("reported", 0.10), ("rectifying", 0.30), ("pending_review", 0.10), ("closed", 0.30), ("verified", 0.20)]
PASSWORD = "bench-password-123"


async def load(dsn: str, hazards: int, enterprises: int) -> dict[str, str]:
    """Agencies (a city with 10 districts), enterprises, two accounts and the hazards, by COPY."""
    conn = await asyncpg.connect(dsn)
    rng = random.Random(7)
    now = datetime.now(UTC)
    loaded = await copy_city(conn, enterprises, now)
    districts, ents = loaded.districts, loaded.enterprises
    topic_of = {e[0]: TOPICS[n % len(TOPICS)] for n, e in enumerate(ents)}
    await conn.copy_records_to_table("enterprise_topic", records=[(e, t) for e, t in topic_of.items()], columns=["enterprise_id", "topic"])
    pw = hash_password(PASSWORD)
    users = [
        (uuid.uuid4(), "bench-admin", pw, "管理员", "admin", None, None, True, now),
        (uuid.uuid4(), "bench-inspector", pw, "区执法人员", "inspector", districts[0], "BENCH-1", True, now),
    ]
    await conn.copy_records_to_table(
        "app_user",
        records=users,
        columns=["id", "username", "password_hash", "display_name", "role", "agency_id", "certificate_no", "is_active", "created_at"],
    )

    statuses = [s for s, _ in STATUSES]
    weights = [w for _, w in STATUSES]
    span = timedelta(days=3 * 365).total_seconds()

    def rows(start: int, count: int):
        for _ in range(start, start + count):
            enterprise = ents[rng.randrange(enterprises)][0]
            created = now - timedelta(seconds=rng.random() * span)
            status = rng.choices(statuses, weights)[0]
            deadline = created + timedelta(days=rng.choice((7, 15, 30, 90))) if status != "reported" else None
            if status == "rectifying" and rng.random() < 0.5:  # about half of the open ones are still within time
                deadline = now + timedelta(days=rng.randint(1, 60))
            closed = created + timedelta(days=rng.random() * 40) if status in ("closed", "verified") else None
            yield (
                uuid.uuid4(),
                enterprise,
                topic_of[enterprise],
                "major" if rng.random() < 0.05 else "general",
                "基准隐患描述",
                status,
                "inspector",
                "[]",
                deadline,
                1 if rng.random() < 0.02 else 0,
                1,
                "bench",
                created,
                created,
                closed,
            )

    columns = [
        "id",
        "enterprise_id",
        "topic",
        "level",
        "description",
        "status",
        "source",
        "evidence_ids",
        "deadline",
        "recurrence_count",
        "version",
        "client_fingerprint",
        "created_at",
        "updated_at",
        "closed_at",
    ]
    batch = 100_000
    started = time.perf_counter()
    for start in range(0, hazards, batch):
        await conn.copy_records_to_table("hazard", records=list(rows(start, min(batch, hazards - start))), columns=columns)
        print(f"  loaded {min(start + batch, hazards):>9,} hazards ({time.perf_counter() - started:.0f} s)", flush=True)
    for statement in rebuild_sql("postgresql").split("; "):  # the running tally, as the service keeps it
        await conn.execute(statement)
    await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    deep = await conn.fetchrow(
        "SELECT created_at, id FROM hazard WHERE status = 'rectifying' ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
        int(hazards * 0.3 * 0.8),
    )
    deep_all = await conn.fetchrow(
        "SELECT created_at, id FROM hazard ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1", int(hazards * 0.9)
    )
    await conn.close()
    return {
        "enterprise": str(ents[0][0]),
        "deep_status_cursor": encode_cursor(deep["created_at"], deep["id"]),
        "deep_cursor": encode_cursor(deep_all["created_at"], deep_all["id"]),
    }


def timed(client: httpx.Client, path: str, params: dict[str, str], requests: int) -> tuple[float, float, int]:
    samples = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, params=params)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
        size = len(response.json().get("items", response.json().get("groups", [])))
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)], size


def measure(base: str, ids: dict[str, str], requests_each: int) -> None:
    """Every list and stats query, as the city admin and as a district inspector; p50/p99 per query."""
    results = []
    for username in ("bench-admin", "bench-inspector"):
        token = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}).json()["access_token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            scenarios = [
                ("list, no filter, first page", "/api/v1/hazards", {}),
                ("list status=rectifying", "/api/v1/hazards", {"status": "rectifying"}),
                ("list overdue=true", "/api/v1/hazards", {"overdue": "true"}),
                ("list topic=mining", "/api/v1/hazards", {"topic": "mining"}),
                ("list enterprise_id", "/api/v1/hazards", {"enterprise_id": ids["enterprise"]}),
                ("list status=rectifying, deep page", "/api/v1/hazards", {"status": "rectifying", "cursor": ids["deep_status_cursor"]}),
                ("list, deep page (90%)", "/api/v1/hazards", {"cursor": ids["deep_cursor"]}),
            ] + [
                (f"stats group_by={g}", "/api/v1/stats/hazards", {"group_by": g})
                for g in ("topic", "level", "status", "agency", "enterprise")
            ]
            for label, path, params in scenarios:
                requests = max(10, requests_each // 10) if label.startswith("stats") else requests_each
                client.get(path, params=params)  # warm-up
                p50, p99, size = timed(client, path, params, requests)
                results.append((username, label, requests, p50, p99, size))
                print(f"{username:<16} {label:<38} n={requests:<4} p50={p50:7.1f} ms  p99={p99:7.1f} ms  rows={size}", flush=True)
    print("\nsummary (targets: list p99 < 50 ms, stats < 500 ms)")
    for username, label, _, _p50, p99, _ in results:
        target = 500 if label.startswith("stats") else 50
        print(f"  {'OK ' if p99 < target else 'MISS'} {username:<16} {label:<38} p99={p99:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--hazards", type=int, default=1_000_000)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with fresh_database(args.postgres, args.keep) as dsn:
        print(f"loading {args.hazards:,} hazards across {args.enterprises:,} enterprises", flush=True)
        ids = asyncio.run(load(dsn, args.hazards, args.enterprises))
        with serving_api(dsn, "hazard-bench-") as base:
            measure(base, ids, args.requests)


if __name__ == "__main__":
    main()
