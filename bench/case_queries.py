"""Benchmark: the case list (`GET /api/v1/cases?overdue_step=` and `?status=`) over 100,000 cases in PostgreSQL.

    .venv/bin/python bench/case_queries.py [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
                                           [--cases 100000] [--enterprises 2000] [--requests 200] [--keep]

Creates its own database, migrates it with Alembic, loads agencies (a city with 10 districts), enterprises, inspectors
and the cases with their handlers by COPY, starts the API (uvicorn as `safety serve` runs it, SeaweedFS for the
health of the app), and times real HTTP requests from one client, one at a time, as the city admin and as a district
inspector: each list's first page and a page 85 % of the way down its rows, reached with a cursor. Prints p50/p99 per
query, and the same for GET /auth/me, the floor an authenticated request costs on the machine at that moment.
Target (2-core machine): list p99 < 50 ms at any depth.

The cases are spread over the statuses of the procedure and carry the deadline columns the procedure would have set
(backend/enforcement/procedure.py: 90 days to decide, the statement and hearing-request periods after 告知, 7 days to
deliver, 15 to pay), from instants spread over three years, so the older cases still waiting on a step are overdue
and the newest are not: each overdue_step matches tens of thousands of cases (the admin's lists).
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
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.auth import hash_password  # noqa: E402
from backend.enforcement.models import DEADLINE_COLUMNS, pending_clause  # noqa: E402
from backend.pagination import encode_cursor  # noqa: E402
from bench.harness import copy_city, fresh_database, serving_api  # noqa: E402

PASSWORD = "bench-password-123"
# status -> share of the cases: half before the decision (most of those notified, waiting on the party), the rest
# decided, delivered, executed or closed
STATUSES = [
    ("open", 0.08),
    ("decision_draft", 0.04),
    ("legal_review", 0.02),
    ("approved", 0.02),
    ("notified", 0.30),
    ("hearing_requested", 0.02),
    ("hearing_scheduled", 0.01),
    ("heard", 0.01),
    ("decided", 0.25),
    ("delivered", 0.12),
    ("executed", 0.06),
    ("closed", 0.07),
]
ORDER = [s for s, _ in STATUSES]
NOTIFIED = ORDER.index("notified")
DECIDED = ORDER.index("decided")
DELIVERED = ORDER.index("delivered")
EXECUTED = ORDER.index("executed")
INSPECTORS_PER_AGENCY = 10
COLUMNS = [
    "id", "enterprise_id", "agency_id", "title", "status", "opened_at", "decide_by", "record_count", "head_hash",
    "decided_at", "notified_at", "statement_due", "statement_met_at", "hearing_right", "hearing_request_due",
    "hearing_request_met_at", "delivery_due", "delivered_at", "payment_due", "executed_at", "closed_at",
    "court_enforcement", "version", "client_fingerprint", "created_by", "created_at", "updated_at",
]  # fmt: skip


def case_row(rng: random.Random, now: datetime, enterprise: uuid.UUID, agency: uuid.UUID, opener: uuid.UUID) -> tuple[Any, ...]:
    """One case as the procedure would have left it: each instant after the one before (never after now), each due
    from the instant that starts its period."""
    opened = now - timedelta(seconds=rng.random() * 3 * 365 * 86400)
    status = rng.choices(ORDER, [w for _, w in STATUSES])[0]
    rank = ORDER.index(status)

    def after(at: datetime, low: float, high: float) -> datetime:
        return min(now, at + timedelta(days=rng.uniform(low, high)))

    notified = statement_due = statement_met = hearing_due = hearing_met = None
    decided = delivery_due = delivered = payment_due = executed = closed = None
    hearing_right = rng.random() < 0.7
    if rank >= NOTIFIED:
        notified = after(opened, 10, 60)
        statement_due = notified + timedelta(days=5)  # 3 working days, and a weekend
        hearing_due = notified + timedelta(days=7) if hearing_right else None
        if status == "notified":  # waiting on the party: most have said nothing
            statement_met = after(notified, 0, 3) if rng.random() < 0.2 else None
            hearing_met = after(notified, 0, 5) if hearing_due and rng.random() < 0.15 else None
        else:
            statement_met = after(notified, 0, 3)
            hearing_met = after(notified, 0, 5) if hearing_due else None
    if rank >= DECIDED:
        decided = after(notified or opened, 5, 25)
        delivery_due = decided + timedelta(days=9)  # 7 working days
        if rank >= DELIVERED:
            delivered = after(decided, 0, 7)
            payment_due = delivered + timedelta(days=15)
        elif rng.random() < 0.5:  # one of two targets served: the earliest due of an unsettled one
            payment_due = after(decided, 0, 7) + timedelta(days=15)
    if rank >= EXECUTED:
        executed = after(payment_due or decided or opened, 0, 15)
    if status == "closed":
        closed = after(executed or opened, 0, 10)
    updated = max(t for t in (opened, notified, statement_met, hearing_met, decided, delivered, executed, closed) if t)
    return (
        uuid.uuid4(), enterprise, agency, "基准案件", status, opened, opened + timedelta(days=90), 3, "0" * 64,
        decided, notified, statement_due, statement_met, hearing_right, hearing_due,
        hearing_met, delivery_due, delivered, payment_due, executed, closed,
        False, 1, "bench", opener, opened, updated,
    )  # fmt: skip


async def load(dsn: str, cases: int, enterprises: int) -> dict[str, Any]:
    """Agencies (a city with 10 districts), enterprises spread over the districts, an admin, 10 inspectors in each
    district, and the cases: each opened by its enterprise's district, with two of that district's inspectors as its
    handlers. Returns the district's id (the benchmark's inspector works there)."""
    conn = await asyncpg.connect(dsn)
    rng = random.Random(12)
    now = datetime.now(UTC)
    loaded = await copy_city(conn, enterprises, now)
    districts, ents = loaded.districts, loaded.enterprises
    pw = hash_password(PASSWORD)
    inspectors = {
        d: [
            (uuid.uuid4(), f"bench-inspector-{n}-{i}", pw, f"区{n}执法员{i}", "inspector", d, f"BENCH-{n}-{i}", True, now)
            for i in range(INSPECTORS_PER_AGENCY)
        ]
        for n, d in enumerate(districts)
    }
    users = [(uuid.uuid4(), "bench-admin", pw, "管理员", "admin", None, None, True, now)]
    users += [u for staff in inspectors.values() for u in staff]
    await conn.copy_records_to_table(
        "app_user",
        records=users,
        columns=["id", "username", "password_hash", "display_name", "role", "agency_id", "certificate_no", "is_active", "created_at"],
    )

    batch = 50_000
    started = time.perf_counter()
    for start in range(0, cases, batch):
        rows, handlers = [], []
        for _ in range(min(batch, cases - start)):
            enterprise, _, _, district, _, _ = ents[rng.randrange(enterprises)]
            pair = rng.sample(inspectors[district], 2)
            row = case_row(rng, now, enterprise, district, pair[0][0])
            rows.append(row)
            handlers += [(row[0], u[0], u[6]) for u in pair]
        await conn.copy_records_to_table("enforcement_case", records=rows, columns=COLUMNS)
        await conn.copy_records_to_table("case_handler", records=handlers, columns=["case_id", "user_id", "certificate_no"])
        print(f"  loaded {start + len(rows):>7,} cases ({time.perf_counter() - started:.0f} s)", flush=True)
    await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    await conn.close()
    return {"district": districts[0], "inspector": inspectors[districts[0]][0][1]}


def filters() -> list[tuple[str, dict[str, str], str]]:
    """(label, query parameters, the same filter as SQL) for each list timed."""
    result = [("no filter", {}, "TRUE")]
    result += [(f"status={s}", {"status": s}, f"status = '{s}'") for s in ("notified", "decided", "legal_review")]
    result += [
        (f"overdue_step={step}", {"overdue_step": step}, f"{pending_clause(step)} AND {due} < now()")
        for step, (due, _, _) in DEADLINE_COLUMNS.items()
    ]
    return result


async def deep_cursors(dsn: str, scope: str) -> dict[str, tuple[int, str | None]]:
    """For each filter, in the caller's scope: how many cases it matches, and the cursor of the row 85 % of the way
    down the list (what a client holds after paging that far)."""
    conn = await asyncpg.connect(dsn)
    out: dict[str, tuple[int, str | None]] = {}
    try:
        for label, _, where in filters():
            condition = f"({where}) AND ({scope})"
            total = await conn.fetchval(f"SELECT count(*) FROM enforcement_case WHERE {condition}")
            row = await conn.fetchrow(
                f"SELECT created_at, id FROM enforcement_case WHERE {condition} ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
                int(total * 0.85),
            )
            out[label] = (total, encode_cursor(row["created_at"], row["id"]) if row else None)
    finally:
        await conn.close()
    return out


def timed(client: httpx.Client, params: dict[str, str], requests: int, path: str = "/api/v1/cases") -> tuple[float, float, int]:
    samples = []
    size = 0
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, params=params)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
        size = len(response.json().get("items", []))
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)], size


def measure(base: str, dsn: str, loaded: dict[str, Any], requests: int) -> list[tuple[str, str, float, float]]:
    """Every filter's first and deep page, as the city admin and as a district inspector; p50/p99 per query."""
    results = []
    callers = [("bench-admin", "TRUE"), (loaded["inspector"], f"agency_id = '{loaded['district']}'")]
    for username, scope in callers:
        cursors = asyncio.run(deep_cursors(dsn, scope))
        token = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": PASSWORD}).json()["access_token"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            client.get("/api/v1/auth/me")  # the floor: an authenticated GET that reads one row, on the same machine
            p50, p99, _ = timed(client, {}, requests, "/api/v1/auth/me")
            results.append((username, "GET /auth/me (floor)", p50, p99))
            print(f"{username:<20} {'GET /auth/me (floor)':<46} {'':<14} n={requests:<4} p50={p50:6.1f} ms  p99={p99:6.1f} ms", flush=True)
            for label, params, _ in filters():
                total, cursor = cursors[label]
                for depth, page in (("first page", params), ("deep page (85%)", {**params, "cursor": cursor or ""})):
                    if cursor is None and depth != "first page":
                        continue
                    client.get("/api/v1/cases", params=page)  # warm-up
                    p50, p99, size = timed(client, page, requests)
                    name = f"{label}, {depth}"
                    results.append((username, name, p50, p99))
                    print(
                        f"{username:<20} {name:<46} matches={total:<6} n={requests:<4} p50={p50:6.1f} ms  p99={p99:6.1f} ms  rows={size}",
                        flush=True,
                    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with fresh_database(args.postgres, args.keep) as dsn:
        print(f"loading {args.cases:,} cases across {args.enterprises:,} enterprises", flush=True)
        loaded = asyncio.run(load(dsn, args.cases, args.enterprises))
        with serving_api(dsn, "case-bench-") as base:
            results = measure(base, dsn, loaded, args.requests)
    print("\nsummary (target: list p99 < 50 ms at any depth)")
    for username, name, _p50, p99 in results:
        print(f"  {'OK  ' if p99 < 50 else 'MISS'} {username:<20} {name:<46} p99={p99:6.1f} ms")


if __name__ == "__main__":
    main()
